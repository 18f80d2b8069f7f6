"""The blocking checkpoint store: the same classes, methods and semantics as the async one.

For scripts, notebooks and synchronous frameworks::

    from obsku_checkpoint_sqlite.sync import SqliteCheckpointStore

GENERATED from store.py by scripts/generate_sync.py: edit store.py and run the script.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from sqlalchemy import URL, Engine

from . import _operations as ops
from ._engine import SyncRunner, open_sync_runner, sqlite_url
from .schemas import (
    UNSET,
    Checkpoint,
    CheckpointNodeResult,
    CycleState,
    NewCheckpoint,
    NewMessage,
    NewSession,
    Role,
    Session,
    SessionChanges,
    SessionPage,
    StoredMessage,
    StoredToolResult,
    ToolCall,
    Unset,
    check_count,
    check_millis,
    check_text,
)


class SqlAlchemyCheckpointStore:
    """Sessions, messages and checkpoints in any SQLAlchemy database.

    Args:
        url_or_engine: a database URL (``sqlite:///file.db``, ``postgresql://...``,
            ``mariadb://...``; a plain URL gets this package's driver, one naming a driver
            is used as given), or an engine you built and will dispose of yourself.
        auto_migrate: bring the schema to this package's head revision on first use
            (the default). With False, a database that is not at head is refused.
        **options: passed to SQLAlchemy's ``create_engine`` when given a URL.

    The store is safe to share between threads. Close it (or use ``with``) to
    release its connections; an engine you passed in is left open.

    Every method refuses an argument of the wrong type (an id that is not a str, a
    ``limit`` that is not an int...) with ``TypeError`` before touching the database.
    """

    def __init__(self, url_or_engine: str | URL | Engine, *, auto_migrate: bool = True, **options: Any) -> None:
        self._runner: SyncRunner = open_sync_runner(url_or_engine, auto_migrate=auto_migrate, **options)

    def close(self) -> None:
        """Release the store's connections. The data stays in the database."""
        self._runner.close()

    def __enter__(self) -> SqlAlchemyCheckpointStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- sessions -----------------------------------------------------------------------

    def create_session(
        self,
        directory: str,
        *,
        title: str | None = None,
        workspace_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Create a session. Its ``updated_at`` equals its ``created_at``.

        Raises:
            ValueError: invalid input (pydantic's ``ValidationError``), or metadata the
                serializer cannot encode; nothing is written.
        """
        new = NewSession(directory=directory, title=title, workspace_id=workspace_id, metadata=metadata)
        return self._runner.run(ops.create_session, new, write=True)

    def get_session(self, session_id: str) -> Session | None:
        """The session with this id, or None."""
        check_text("session_id", session_id)
        return self._runner.run(ops.get_session, session_id, write=False)

    def list_sessions(
        self,
        workspace_id: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        search: str | None = None,
    ) -> SessionPage:
        """Sessions, most recently updated first (ties: highest id first).

        The result is a list of sessions with a ``next_cursor`` attribute: pass it back
        as ``cursor`` for the next page (keyset pagination, fast at any depth). ``search``
        matches title, directory or id, case-insensitively.

        Raises:
            ValueError: a negative ``limit`` or a cursor this store did not return.
        """
        check_count("limit", limit)
        check_text("workspace_id", workspace_id, optional=True)
        check_text("search", search, optional=True)
        return self._runner.run(ops.list_sessions, workspace_id, limit, cursor, search, write=False)

    def update_session(
        self,
        session_id: str,
        *,
        title: str | Unset | None = UNSET,
        directory: str | Unset = UNSET,
        workspace_id: str | Unset | None = UNSET,
        metadata: dict[str, Any] | Unset | None = UNSET,
    ) -> Session:
        """Change the keywords passed (None clears title, workspace_id or metadata) and bump
        ``updated_at``.

        Raises:
            SessionNotFoundError: no such session.
            ValueError: invalid input, e.g. ``directory=None``; nothing is written.
        """
        check_text("session_id", session_id)
        given = {"title": title, "directory": directory, "workspace_id": workspace_id, "metadata": metadata}
        changes = {name: value for name, value in given.items() if value is not UNSET}
        validated = SessionChanges.model_validate(changes).model_dump(include=set(changes))
        return self._runner.run(ops.update_session, session_id, validated, write=True)

    def delete_session(self, session_id: str) -> None:
        """Delete a session with its messages and checkpoints. No error if it is absent."""
        check_text("session_id", session_id)
        self._runner.run(ops.delete_session, session_id, write=True)

    # --- messages -----------------------------------------------------------------------

    def add_message(
        self,
        session_id: str,
        *,
        role: Role,
        content: str | None = None,
        tool_calls: list[ToolCall] | list[dict[str, Any]] | None = None,
        tool_results: list[StoredToolResult] | list[dict[str, Any]] | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
    ) -> StoredMessage:
        """Append a message and bump the session's ``updated_at``, in one transaction.

        Raises:
            SessionNotFoundError: no such session.
            ValueError: invalid input (unknown role, negative tokens, a tool call without
                its id or name...); nothing is written.
        """
        new = NewMessage(
            session_id=session_id, role=role, content=content, tool_calls=tool_calls,
            tool_results=tool_results, tokens_in=tokens_in, tokens_out=tokens_out,
        )  # fmt: skip
        return self._runner.run(ops.add_message, new, write=True)

    def get_messages(
        self, session_id: str, *, before: int | None = None, limit: int | None = None
    ) -> list[StoredMessage]:
        """A session's messages, oldest first, in insertion order.

        ``before`` keeps only messages created before that time (ms since the epoch);
        ``limit`` keeps the most recent ``limit`` of those.

        Raises:
            SessionNotFoundError: no such session.
            ValueError: a negative ``limit``.
            CheckpointCorruptionError: a message's stored JSON cannot be decoded.
        """
        check_text("session_id", session_id)
        check_millis("before", before)
        check_count("limit", limit)
        return self._runner.run(ops.get_messages, session_id, before, limit, write=False)

    # --- checkpoints --------------------------------------------------------------------

    def save_checkpoint(
        self,
        *,
        session_id: str,
        namespace: str = "",
        version: int | None = None,
        step: int,
        node_results: dict[str, CheckpointNodeResult] | dict[str, dict[str, Any]],
        pending_nodes: list[str] | tuple[str, ...] = (),
        source: str,
        parent_id: str | None = None,
        node_id: str | None = None,
        cycle_state: CycleState | dict[str, Any] | None = None,
    ) -> Checkpoint:
        """Save a checkpoint. With ``version=None`` the store assigns the next version of
        the (session, namespace), atomically, however many writers race.

        The checkpoint records how far the session's history reached, so a fork from it
        copies exactly the messages that existed when it was saved.

        Raises:
            SessionNotFoundError: no such session.
            CheckpointVersionConflictError: the explicit ``version`` exists already.
            ValueError: invalid input, or values the serializer cannot encode; nothing
                is written.
        """
        new = NewCheckpoint(
            session_id=session_id, namespace=namespace, version=version, step=step,
            node_results=node_results, pending_nodes=pending_nodes, source=source,
            parent_id=parent_id, node_id=node_id, cycle_state=cycle_state,
        )  # fmt: skip
        return self._runner.run(ops.save_checkpoint, new, write=True)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        """The checkpoint with this id, or None.

        Raises:
            CheckpointCorruptionError: its stored JSON cannot be decoded.
        """
        check_text("checkpoint_id", checkpoint_id)
        return self._runner.run(ops.get_checkpoint, checkpoint_id, write=False)

    def get_latest_checkpoint(self, session_id: str, namespace: str | None = None) -> Checkpoint | None:
        """The checkpoint with the highest step (ties: newest, then highest version), in
        ``namespace`` or in any namespace if None. None if there is none or no session.

        Raises:
            CheckpointCorruptionError: its stored JSON cannot be decoded.
        """
        check_text("session_id", session_id)
        check_text("namespace", namespace, optional=True)
        return self._runner.run(ops.get_latest_checkpoint, session_id, namespace, write=False)

    def list_checkpoints(
        self, session_id: str, *, namespace: str | None = None, limit: int | None = None
    ) -> list[Checkpoint]:
        """A session's checkpoints, latest first (the order of ``get_latest_checkpoint``).

        Raises:
            SessionNotFoundError: no such session.
            ValueError: a negative ``limit``.
            CheckpointCorruptionError: a checkpoint's stored JSON cannot be decoded.
        """
        check_text("session_id", session_id)
        check_text("namespace", namespace, optional=True)
        check_count("limit", limit)
        return self._runner.run(ops.list_checkpoints, session_id, namespace, limit, write=False)

    def fork(self, checkpoint_id: str, *, title: str | None = None) -> Session:
        """Start a new session from a checkpoint.

        The new session has the original's directory, workspace and metadata, the title
        ``title`` or ``"Fork of <original title or checkpoint id>"``, a copy of exactly the
        messages that existed when the checkpoint was saved, and one checkpoint copied
        from it with ``source="fork"`` and ``parent_id`` set to it. All or nothing; the
        original session is untouched.

        Raises:
            CheckpointNotFoundError: no such checkpoint.
        """
        check_text("checkpoint_id", checkpoint_id)
        check_text("title", title, optional=True)
        return self._runner.run(ops.fork, checkpoint_id, title, write=True)


class SqliteCheckpointStore(SqlAlchemyCheckpointStore):
    """The store on a SQLite file, or on a private in-memory database by default.

    A new file is created with mode 0600 and runs in WAL mode with a busy timeout, so
    several processes and stores can share it.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, auto_migrate: bool = True, **options: Any) -> None:
        super().__init__(sqlite_url(path), auto_migrate=auto_migrate, **options)
