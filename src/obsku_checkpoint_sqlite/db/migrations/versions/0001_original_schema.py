"""The original package's schema: sessions, messages, checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Exactly the tables, columns and indexes of @obsku/checkpoint-sqlite, so a file
written by either package opens in the other.

Every step looks first at what exists. So this revision adopts a database made by the
original package, whose tables and indexes are all there already (``migrate`` has
checked their columns first), and it completes itself when run again after an upgrade
cut short on MariaDB, which commits each DDL statement on its own and so keeps part
of the revision applied and none of it recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from obsku_checkpoint_sqlite.db.types import Key, Payload, millis

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = Key(128)
NAME = Key(255)


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _create_index(name: str, table: str, columns: Sequence[Any], **options: Any) -> None:
    if name not in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns, **options)


def upgrade() -> None:
    if "sessions" not in _tables():
        _create_sessions()
    _create_index("idx_sessions_workspace", "sessions", ["workspace_id", sa.desc(sa.column("updated_at"))])
    if "messages" not in _tables():
        _create_messages()
    _create_index("idx_messages_session", "messages", ["session_id", "created_at"])
    if "checkpoints" not in _tables():
        _create_checkpoints()
    _create_index("idx_checkpoints_session", "checkpoints", ["session_id", "namespace", "step"])
    _create_index("idx_checkpoints_version", "checkpoints", ["session_id", "namespace", "version"], unique=True)


def _create_sessions() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", ID, nullable=False),
        sa.Column("workspace_id", NAME, nullable=True),
        sa.Column("title", Payload(), nullable=True),
        sa.Column("directory", Payload(), nullable=False),
        sa.Column("created_at", millis(), nullable=False),
        sa.Column("updated_at", millis(), nullable=False),
        sa.Column("metadata", Payload(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )


def _create_messages() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("session_id", ID, nullable=False),
        sa.Column("role", Key(16), nullable=False),
        sa.Column("content", Payload(), nullable=True),
        sa.Column("tool_calls", Payload(), nullable=True),
        sa.Column("tool_results", Payload(), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=True),
        sa.Column("tokens_out", sa.Integer(), nullable=True),
        sa.Column("created_at", millis(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_messages_session_id_sessions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sqlite_autoincrement=True,
    )


def _create_checkpoints() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", ID, nullable=False),
        sa.Column("session_id", ID, nullable=False),
        sa.Column("namespace", NAME, server_default="", nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("node_id", NAME, nullable=True),
        sa.Column("node_results", Payload(), nullable=False),
        sa.Column("pending_nodes", Payload(), nullable=True),
        sa.Column("cycle_state", Payload(), nullable=True),
        sa.Column("source", Key(16), nullable=True),
        sa.Column("created_at", millis(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_checkpoints_session_id_sessions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
    )


def downgrade() -> None:
    for table in ("checkpoints", "messages", "sessions"):
        if table in _tables():
            op.drop_table(table)
