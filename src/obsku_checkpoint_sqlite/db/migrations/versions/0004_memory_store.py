"""The memory store: the TypeScript package's ``entities`` and ``facts`` tables.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Creates the two tables with the TypeScript package's names, columns, nullability,
defaults, foreign-key actions and index names. A database that already has them (a file
made by ``@obsku/checkpoint-sqlite``, a database made by ``@obsku/checkpoint-postgres``)
keeps them as they are once their columns are checked; only a missing index is added
(``idx_facts_confidence``, which the TypeScript PostgreSQL schema lacks and ignores).

MariaDB commits each DDL statement on its own, so a failure part-way leaves some of
this revision applied and ``alembic_version`` still at 0003. Every step therefore looks
first at what exists, and running the revision again completes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from obsku_checkpoint_sqlite.db.types import Embedding, Key, Payload, confidence, millis
from obsku_checkpoint_sqlite.errors import SchemaError

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = Key(128)
NAME = Key(255)

# The TypeScript package's columns and whether each may be NULL: what an adopted table must have.
COLUMNS: dict[str, dict[str, bool]] = {
    "entities": {
        "id": False, "session_id": False, "workspace_id": True, "name": False, "type": False,
        "attributes": True, "relationships": True, "created_at": False, "updated_at": False, "embedding": True,
    },
    "facts": {
        "id": False, "workspace_id": True, "content": False, "confidence": True,
        "source_session_id": True, "created_at": False, "embedding": True,
    },
}  # fmt: skip
INDEXES: list[tuple[str, str, list[str]]] = [
    ("idx_entities_session", "entities", ["session_id"]),
    ("idx_entities_workspace", "entities", ["workspace_id"]),
    ("idx_entities_type", "entities", ["type"]),
    ("idx_facts_workspace", "facts", ["workspace_id"]),
    ("idx_facts_confidence", "facts", ["confidence"]),
]


def _check_adopted(inspector: sa.Inspector, table: str) -> None:
    columns = {column["name"]: column for column in inspector.get_columns(table)}
    key = set(inspector.get_pk_constraint(table)["constrained_columns"])
    problems = [
        f"{table}.{name} is missing" if name not in columns else f"{table}.{name} allows NULL"
        for name, nullable in COLUMNS[table].items()
        if name not in columns or (not nullable and name not in key and columns[name]["nullable"])
    ]
    if problems:
        raise SchemaError(
            "The database has memory tables named like this package's but a different schema "
            f"({'; '.join(problems)}). Use an empty database, or fix the schema by hand."
        )


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    for table in COLUMNS:
        if table in tables:
            _check_adopted(inspector, table)
    if "entities" not in tables:
        op.create_table(
            "entities",
            sa.Column("id", ID, nullable=False),
            sa.Column("session_id", ID, nullable=False),
            sa.Column("workspace_id", NAME, nullable=True),
            sa.Column("name", Payload(), nullable=False),
            sa.Column("type", NAME, nullable=False),
            sa.Column("attributes", Payload(), nullable=True),
            sa.Column("relationships", Payload(), nullable=True),
            sa.Column("created_at", millis(), nullable=False),
            sa.Column("updated_at", millis(), nullable=False),
            sa.Column("embedding", Embedding(), nullable=True),
            sa.ForeignKeyConstraint(
                ["session_id"], ["sessions.id"], name=op.f("fk_entities_session_id_sessions"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_entities")),
        )
    if "facts" not in tables:
        op.create_table(
            "facts",
            sa.Column("id", ID, nullable=False),
            sa.Column("workspace_id", NAME, nullable=True),
            sa.Column("content", Payload(), nullable=False),
            sa.Column("confidence", confidence(), server_default=sa.text("1.0"), nullable=True),
            sa.Column("source_session_id", ID, nullable=True),
            sa.Column("created_at", millis(), nullable=False),
            sa.Column("embedding", Embedding(), nullable=True),
            sa.ForeignKeyConstraint(
                ["source_session_id"], ["sessions.id"], name=op.f("fk_facts_source_session_id_sessions"),
                ondelete="SET NULL",
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_facts")),
        )  # fmt: skip
    present = {
        table: {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table) if index["name"]}
        for table in COLUMNS
    }
    for name, table, columns in INDEXES:
        if name not in present[table]:
            op.create_index(name, table, columns)


def downgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    for table in ("facts", "entities"):
        if table in tables:
            op.drop_table(table)
