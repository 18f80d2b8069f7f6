"""Indexes that serve a semantic search's candidates without reading the rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

A search first reads its candidates' ids and change markers. Rows of the memory tables
carry their embedding (some 30 KB for 1,536 numbers), so reading those two columns from
the table visits a page per row; these indexes hold them, and SQLite reads them alone.
The TypeScript package ignores indexes it does not know.

Each step looks first at what exists, so running the revision again after a failure
part-way (MariaDB commits each DDL statement on its own) completes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: list[tuple[str, str, list[str]]] = [
    ("idx_entities_search", "entities", ["workspace_id", "updated_at", "id"]),
    ("idx_facts_search", "facts", ["workspace_id", "created_at", "id"]),
]


def _indexes(table: str) -> set[str]:
    return {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table) if index["name"]}


def upgrade() -> None:
    for name, table, columns in INDEXES:
        if name not in _indexes(table):
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        if name in _indexes(table):
            op.drop_index(name, table_name=table)
