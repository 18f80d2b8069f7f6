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
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from obsku_checkpoint_sqlite.db.types import Key

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = Key(128)

NEW_INDEXES = [
    ("idx_sessions_workspace_page", "sessions", ["workspace_id", "updated_at", "id"]),
    ("idx_sessions_updated", "sessions", ["updated_at", "id"]),
    ("idx_messages_session_order", "messages", ["session_id", "id"]),
    ("idx_checkpoints_order", "checkpoints", ["session_id", "namespace", "step", "created_at", "version"]),
    ("idx_checkpoints_order_any", "checkpoints", ["session_id", "step", "created_at", "version", "id"]),
    ("idx_checkpoints_parent", "checkpoints", ["parent_id"]),
]


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("forked_from_session_id", ID, nullable=True))
        batch.add_column(sa.Column("forked_from_checkpoint_id", ID, nullable=True))
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("last_message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
    for name, table, columns in NEW_INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(NEW_INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("last_message_id")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("forked_from_checkpoint_id")
        batch.drop_column("forked_from_session_id")
