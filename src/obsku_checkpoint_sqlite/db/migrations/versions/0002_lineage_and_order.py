"""Exact forks, fork lineage, and indexes for every hot query's order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Adds only nullable columns and indexes, which the original package ignores:
- checkpoints.last_message_id: the session's newest message id when the checkpoint
  was saved, so a fork copies exactly the history the checkpoint saw (rows without
  it fall back to the original's created_at rule);
- sessions.forked_from_session_id / forked_from_checkpoint_id: a fork's lineage;
- indexes that serve "latest first" orders and keyset pages without a sort.

MariaDB commits each DDL statement on its own, so an upgrade cut short there leaves
part of this revision applied and ``alembic_version`` still at 0001. Every step
therefore looks first at what exists, and running the revision again completes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from obsku_checkpoint_sqlite.db.types import Key

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = Key(128)
MESSAGE_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

NEW_INDEXES = [
    ("idx_sessions_workspace_page", "sessions", ["workspace_id", "updated_at", "id"]),
    ("idx_sessions_updated", "sessions", ["updated_at", "id"]),
    ("idx_messages_session_order", "messages", ["session_id", "id"]),
    ("idx_checkpoints_order", "checkpoints", ["session_id", "namespace", "step", "created_at", "version"]),
    ("idx_checkpoints_order_any", "checkpoints", ["session_id", "step", "created_at", "version", "id"]),
    ("idx_checkpoints_parent", "checkpoints", ["parent_id"]),
]


def _new_columns() -> list[tuple[str, sa.Column[Any]]]:
    return [
        ("sessions", sa.Column("forked_from_session_id", ID, nullable=True)),
        ("sessions", sa.Column("forked_from_checkpoint_id", ID, nullable=True)),
        ("checkpoints", sa.Column("last_message_id", MESSAGE_ID, nullable=True)),
    ]


def _columns(table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str | None]:
    return {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade() -> None:
    for table, column in _new_columns():
        if column.name not in _columns(table):
            with op.batch_alter_table(table) as batch:
                batch.add_column(column)
    for name, table, columns in NEW_INDEXES:
        if name not in _indexes(table):
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns_of_index in reversed(NEW_INDEXES):
        if name in _indexes(table):
            op.drop_index(name, table_name=table)
    for table in ("checkpoints", "sessions"):
        # One batch per table: on SQLite each batch that drops a column copies the table.
        present = _columns(table)
        doomed = [column.name for owner, column in reversed(_new_columns()) if owner == table]
        doomed = [name for name in doomed if name in present]
        if doomed:
            with op.batch_alter_table(table) as batch:
                for name in doomed:
                    batch.drop_column(name)
