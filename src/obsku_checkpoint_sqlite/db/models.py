"""The schema: the original package's three tables, as SQLAlchemy declarative models.

The columns and index names of the first migration are exactly those of
``@obsku/checkpoint-sqlite``, so a database file moves between the two packages.
Later migrations only add nullable columns and indexes, which the original ignores.
Models hold no logic: conversion to DTOs happens in ``db.rows``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, MetaData, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import Blob, Embedding, Key, Payload, confidence, millis

# Identical constraint names on every backend, so migrations can address them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 128
NAME_LENGTH = 255


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class SessionRecord(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(Key(ID_LENGTH), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(Key(NAME_LENGTH))
    title: Mapped[str | None] = mapped_column(Payload())
    directory: Mapped[str] = mapped_column(Payload())
    created_at: Mapped[int] = mapped_column(millis())
    updated_at: Mapped[int] = mapped_column(millis())
    metadata_json: Mapped[str | None] = mapped_column("metadata", Payload())
    # Lineage of a fork. Not foreign keys: a fork outlives the session it came from.
    forked_from_session_id: Mapped[str | None] = mapped_column(Key(ID_LENGTH))
    forked_from_checkpoint_id: Mapped[str | None] = mapped_column(Key(ID_LENGTH))

    __table_args__ = (
        # Keyset pages over (updated_at, id), with and without a workspace.
        Index("idx_sessions_workspace_page", "workspace_id", "updated_at", "id"),
        Index("idx_sessions_updated", "updated_at", "id"),
    )


# Declared outside the class so that it can name a column's DESC order.
Index("idx_sessions_workspace", SessionRecord.workspace_id, SessionRecord.updated_at.desc())


class MessageRecord(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    session_id: Mapped[str] = mapped_column(Key(ID_LENGTH), ForeignKey("sessions.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(Key(16))
    content: Mapped[str | None] = mapped_column(Payload())
    tool_calls: Mapped[str | None] = mapped_column(Payload())
    tool_results: Mapped[str | None] = mapped_column(Payload())
    tokens_in: Mapped[int | None] = mapped_column(Integer())
    tokens_out: Mapped[int | None] = mapped_column(Integer())
    created_at: Mapped[int] = mapped_column(millis())

    __table_args__ = (
        Index("idx_messages_session", "session_id", "created_at"),
        # Insertion order within a session: the last N messages, MAX(id), fork copies.
        Index("idx_messages_session_order", "session_id", "id"),
        {"sqlite_autoincrement": True},
    )


class CheckpointRecord(Base):
    __tablename__ = "checkpoints"

    id: Mapped[str] = mapped_column(Key(ID_LENGTH), primary_key=True)
    session_id: Mapped[str] = mapped_column(Key(ID_LENGTH), ForeignKey("sessions.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(Key(NAME_LENGTH), server_default="")
    parent_id: Mapped[str | None] = mapped_column(Key(ID_LENGTH))
    version: Mapped[int] = mapped_column(Integer(), server_default="1")
    step: Mapped[int] = mapped_column(Integer())
    node_id: Mapped[str | None] = mapped_column(Key(NAME_LENGTH))
    node_results: Mapped[str] = mapped_column(Payload())
    pending_nodes: Mapped[str | None] = mapped_column(Payload())
    cycle_state: Mapped[str | None] = mapped_column(Payload())
    source: Mapped[str | None] = mapped_column(Key(16))
    created_at: Mapped[int] = mapped_column(millis())
    # The id of the session's newest message when this checkpoint was saved (0: none).
    # NULL on rows from before this column or from the original package: a fork
    # then falls back to the original's rule, created_at <= checkpoint.created_at.
    last_message_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))

    __table_args__ = (
        Index("idx_checkpoints_session", "session_id", "namespace", "step"),
        Index("idx_checkpoints_version", "session_id", "namespace", "version", unique=True),
        # The full "latest first" order, so no query sorts: step, created_at, version
        # (and id, to break ties between namespaces).
        Index("idx_checkpoints_order", "session_id", "namespace", "step", "created_at", "version"),
        Index("idx_checkpoints_order_any", "session_id", "step", "created_at", "version", "id"),
        Index("idx_checkpoints_parent", "parent_id"),
    )


# --- LangGraph threads (obsku_checkpoint_sqlite.langgraph) ---------------------------------
# A LangGraph thread is a row of ``sessions`` (id = thread_id); its checkpoints and pending
# writes live here, apart from the original package's tables, which the TypeScript package
# reads. Keys are LangGraph's own: ids are unique per (thread, namespace).


class LangGraphCheckpointRecord(Base):
    __tablename__ = "langgraph_checkpoints"

    session_id: Mapped[str] = mapped_column(
        Key(ID_LENGTH), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    checkpoint_ns: Mapped[str] = mapped_column(Key(NAME_LENGTH), primary_key=True, server_default="")
    checkpoint_id: Mapped[str] = mapped_column(Key(ID_LENGTH), primary_key=True)
    parent_checkpoint_id: Mapped[str | None] = mapped_column(Key(ID_LENGTH))
    # The serializer's type tag and bytes (LangGraph's ``serde.dumps_typed``).
    type: Mapped[str] = mapped_column(Key(NAME_LENGTH))
    checkpoint: Mapped[bytes] = mapped_column(Blob())
    metadata_json: Mapped[str] = mapped_column("metadata", Payload())
    # Copied out of the metadata so that delete_for_runs is an index search.
    run_id: Mapped[str | None] = mapped_column(Key(ID_LENGTH))
    created_at: Mapped[int] = mapped_column(millis())

    __table_args__ = (
        # The primary key serves a namespace's latest and its pages; this one serves a
        # thread's pages across namespaces, newest id first, without a sort.
        Index("idx_langgraph_checkpoints_thread", "session_id", "checkpoint_id", "checkpoint_ns"),
        # Plain LangGraph saves no run_id: where the dialect can, only the rows with one are indexed.
        Index(
            "idx_langgraph_checkpoints_run",
            "run_id",
            sqlite_where=text("run_id IS NOT NULL"),
            postgresql_where=text("run_id IS NOT NULL"),
        ),
    )


class LangGraphWriteRecord(Base):
    __tablename__ = "langgraph_writes"

    session_id: Mapped[str] = mapped_column(
        Key(ID_LENGTH), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    checkpoint_ns: Mapped[str] = mapped_column(Key(NAME_LENGTH), primary_key=True, server_default="")
    # Not a foreign key to langgraph_checkpoints: LangGraph saves a step's writes in the
    # background, and they may commit before the checkpoint they belong to.
    checkpoint_id: Mapped[str] = mapped_column(Key(ID_LENGTH), primary_key=True)
    task_id: Mapped[str] = mapped_column(Key(ID_LENGTH), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(Key(NAME_LENGTH))
    type: Mapped[str] = mapped_column(Key(NAME_LENGTH))
    value: Mapped[bytes] = mapped_column(Blob())
    task_path: Mapped[str] = mapped_column(Payload())


# --- The memory store (entities and facts) ----------------------------------------------------
# The TypeScript package's two memory tables: the same names, columns, nullability, defaults,
# foreign-key actions and index names, so either package reads and writes the other's rows.


class EntityRecord(Base):
    __tablename__ = "entities"

    id: Mapped[str] = mapped_column(Key(ID_LENGTH), primary_key=True)
    session_id: Mapped[str] = mapped_column(Key(ID_LENGTH), ForeignKey("sessions.id", ondelete="CASCADE"))
    workspace_id: Mapped[str | None] = mapped_column(Key(NAME_LENGTH))
    name: Mapped[str] = mapped_column(Payload())
    type: Mapped[str] = mapped_column(Key(NAME_LENGTH))
    attributes: Mapped[str | None] = mapped_column(Payload())
    relationships: Mapped[str | None] = mapped_column(Payload())
    created_at: Mapped[int] = mapped_column(millis())
    updated_at: Mapped[int] = mapped_column(millis())
    embedding: Mapped[str | bytes | None] = mapped_column(Embedding())

    __table_args__ = (
        Index("idx_entities_session", "session_id"),
        Index("idx_entities_workspace", "workspace_id"),
        Index("idx_entities_type", "type"),
        # A search's candidates (id and change marker) read from the index alone.
        Index("idx_entities_search", "workspace_id", "updated_at", "id"),
    )


class FactRecord(Base):
    __tablename__ = "facts"

    id: Mapped[str] = mapped_column(Key(ID_LENGTH), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(Key(NAME_LENGTH))
    content: Mapped[str] = mapped_column(Payload())
    confidence: Mapped[float | None] = mapped_column(confidence(), server_default=text("1.0"))
    source_session_id: Mapped[str | None] = mapped_column(
        Key(ID_LENGTH), ForeignKey("sessions.id", ondelete="SET NULL")
    )
    created_at: Mapped[int] = mapped_column(millis())
    embedding: Mapped[str | bytes | None] = mapped_column(Embedding())

    __table_args__ = (
        Index("idx_facts_workspace", "workspace_id"),
        Index("idx_facts_confidence", "confidence"),
        Index("idx_facts_search", "workspace_id", "created_at", "id"),
        # A session's facts: its summary's count, a session-filtered export, and the
        # ON DELETE SET NULL of a deleted session. On MariaDB, the foreign key's own index.
        Index("idx_facts_source_session", "source_session_id"),
    )
