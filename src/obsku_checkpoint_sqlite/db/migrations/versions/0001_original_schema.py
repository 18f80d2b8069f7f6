"""The original package's schema: sessions, messages, checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Exactly the tables, columns and indexes of @obsku/checkpoint-sqlite, so a file
written by either package opens in the other. A database made by the original
package is stamped at this revision instead of running it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from obsku_checkpoint_sqlite.db.types import Key, Payload, millis

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = Key(128)
NAME = Key(255)


def upgrade() -> None:
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
    op.create_index("idx_sessions_workspace", "sessions", ["workspace_id", sa.desc(sa.column("updated_at"))])

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
    op.create_index("idx_messages_session", "messages", ["session_id", "created_at"])

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
    op.create_index("idx_checkpoints_session", "checkpoints", ["session_id", "namespace", "step"])
    op.create_index("idx_checkpoints_version", "checkpoints", ["session_id", "namespace", "version"], unique=True)


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("messages")
    op.drop_table("sessions")
