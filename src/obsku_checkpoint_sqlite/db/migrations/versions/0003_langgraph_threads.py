"""LangGraph threads: checkpoints and pending writes of obsku_checkpoint_sqlite.langgraph.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Adds two tables, which the original package never reads: a LangGraph thread is a row
of ``sessions``, and its checkpoints and writes hang off it with ``ON DELETE CASCADE``.

MariaDB commits each DDL statement on its own, so a failure part-way leaves some of
this revision applied and ``alembic_version`` still at 0002. Every step therefore looks
first at what exists, and running the revision again completes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from obsku_checkpoint_sqlite.db.types import Blob, Key, Payload, millis

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = Key(128)
NAME = Key(255)

CHECKPOINTS = "langgraph_checkpoints"
WRITES = "langgraph_writes"
# Plain LangGraph saves no run_id: where the dialect can, only the rows with one are indexed.
WITH_RUN_ID: dict[str, Any] = {
    "sqlite_where": sa.text("run_id IS NOT NULL"),
    "postgresql_where": sa.text("run_id IS NOT NULL"),
}
INDEXES: list[tuple[str, str, list[str], dict[str, Any]]] = [
    ("idx_langgraph_checkpoints_thread", CHECKPOINTS, ["session_id", "checkpoint_id", "checkpoint_ns"], {}),
    ("idx_langgraph_checkpoints_run", CHECKPOINTS, ["run_id"], WITH_RUN_ID),
]


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _indexes(table: str) -> set[str]:
    return {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table) if index["name"]}


def upgrade() -> None:
    if CHECKPOINTS not in _tables():
        op.create_table(
            CHECKPOINTS,
            sa.Column("session_id", ID, nullable=False),
            sa.Column("checkpoint_ns", NAME, server_default="", nullable=False),
            sa.Column("checkpoint_id", ID, nullable=False),
            sa.Column("parent_checkpoint_id", ID, nullable=True),
            sa.Column("type", NAME, nullable=False),
            sa.Column("checkpoint", Blob(), nullable=False),
            sa.Column("metadata", Payload(), nullable=False),
            sa.Column("run_id", ID, nullable=True),
            sa.Column("created_at", millis(), nullable=False),
            sa.ForeignKeyConstraint(
                ["session_id"], ["sessions.id"], name=op.f("fk_langgraph_checkpoints_session_id_sessions"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("session_id", "checkpoint_ns", "checkpoint_id", name=op.f("pk_langgraph_checkpoints")),
        )  # fmt: skip
    if WRITES not in _tables():
        op.create_table(
            WRITES,
            sa.Column("session_id", ID, nullable=False),
            sa.Column("checkpoint_ns", NAME, server_default="", nullable=False),
            sa.Column("checkpoint_id", ID, nullable=False),
            sa.Column("task_id", ID, nullable=False),
            sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("channel", NAME, nullable=False),
            sa.Column("type", NAME, nullable=False),
            sa.Column("value", Blob(), nullable=False),
            sa.Column("task_path", Payload(), nullable=False),
            sa.ForeignKeyConstraint(
                ["session_id"], ["sessions.id"], name=op.f("fk_langgraph_writes_session_id_sessions"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint(
                "session_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx", name=op.f("pk_langgraph_writes")
            ),
        )  # fmt: skip
    present = _indexes(CHECKPOINTS)
    for name, table, columns, options in INDEXES:
        if name not in present:
            op.create_index(name, table, columns, **options)


def downgrade() -> None:
    tables = _tables()
    if WRITES in tables:
        op.drop_table(WRITES)
    if CHECKPOINTS in tables:
        op.drop_table(CHECKPOINTS)
