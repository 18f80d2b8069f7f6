"""The checkpoint store: the original package's API over any SQLAlchemy database.

``store.py`` holds the async face and is the one written by hand; ``sync.py``, the
blocking face with the same names, is generated from it by ``unasyncd`` (configured in
``pyproject.toml``). Sessions, messages, checkpoints and forks are here; the operator
tooling and the memory store are mixed in from ``facade.tooling`` and ``facade.memory``,
generated the same way. Each method validates its input into a DTO (so bad input fails
before a connection is taken) and hands one operation from ``ops``, or one job, to its
runner.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from obsku_checkpoint_sqlite.facade.memory import AsyncMemoryMethods
from obsku_checkpoint_sqlite.facade.tooling import AsyncToolingMethods
from obsku_checkpoint_sqlite.runtime.async_runners import AsyncRunner, open_async_runner

from .bounds import ID_LENGTH, NAME_LENGTH, check_count, check_millis, check_text
from .dto import (
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
    check_seconds,
)
from .ops import checkpoints, forks, messages, sessions
from .runtime.failures import DEFAULT_LOCK_TIMEOUT
from .runtime.sync_runner import is_short_page
from .runtime.urls import database_url, sqlite_url


class SqlAlchemyCheckpointStore(AsyncToolingMethods, AsyncMemoryMethods):
    """Sessions, messages and checkpoints in any SQLAlchemy database.

    Args:
        url_or_engine: a database URL (``sqlite:///file.db``, ``postgresql://...``,
            ``mariadb://...``; a plain URL gets this package's driver, one naming a driver
            is used as given, an asyncio driver's URL on the blocking face gets the
            backend's blocking driver), the path of a SQLite file (a str without ``://``,
            or a ``pathlib.Path``), or an engine you built and will dispose of yourself.
        auto_migrate: bring the schema to this package's head revision on first use
            (the default). With False, a database that is not at head is refused.
        lock_timeout: seconds an operation keeps retrying while another writer holds the
            rows it needs (30 by default); then it raises ``LockTimeoutError`` and has
            written nothing. On SQLite one attempt waits at most 10 s of it; on PostgreSQL
            and MariaDB each attempt also waits as long as the server's own lock timeout.
        **options: passed to SQLAlchemy's ``create_engine`` when given a URL.

    Raises:
        ValueError: a str with ``://`` that is not a database URL, or an asyncio driver's
            URL on the blocking face for a backend this package has no blocking driver for.
        DriverNotInstalledError: the URL needs a driver that is not installed.

    The store is safe to share between tasks (async face) and threads (blocking face).
    Close it, or use it as a context manager, to release its connections; an engine you
    passed in is left open.

    Every method refuses an argument of the wrong type (an id that is not a str, a
    ``limit`` that is not an int...) with ``TypeError`` before touching the database.
    """

    def __init__(
        self,
        url_or_engine: str | os.PathLike[str] | URL | AsyncEngine,
        *,
        auto_migrate: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        **options: Any,
    ) -> None:
        check_seconds("lock_timeout", lock_timeout)
        target = database_url(url_or_engine) if isinstance(url_or_engine, (str, os.PathLike)) else url_or_engine
        self._runner: AsyncRunner = open_async_runner(
            target, auto_migrate=auto_migrate, lock_timeout=lock_timeout, **options
        )

    async def close(self) -> None:
        """Release the store's connections. The data stays in the database."""
        await self._runner.close()

    async def __aenter__(self) -> SqlAlchemyCheckpointStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- sessions -----------------------------------------------------------------------

    async def create_session(
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
        return await self._runner.run(sessions.create_session, new, write=True, bounded=True)

    async def get_session(self, session_id: str) -> Session | None:
        """The session with this id, or None."""
        check_text("session_id", session_id, max_length=ID_LENGTH)
        return await self._runner.run(sessions.get_session, session_id, write=False, snapshot=False, bounded=True)

    async def list_sessions(
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

        A damaged session does not fail the page: a session whose stored row cannot be
        decoded (its metadata, say) is left out of the list and reported in the page's
        ``corrupt`` attribute, a list of ``CheckpointCorruptionError`` each naming its
        row and column, and logged as a warning. ``get_session`` on it raises that error;
        ``delete_session`` removes it. The cursor moves past it, so a page may hold fewer
        than ``limit`` sessions and still have a next page.

        Raises:
            ValueError: a negative ``limit`` or a cursor this store did not return.
            CheckpointCorruptionError: the driver cannot read a row at all (text that is
                not UTF-8, a damaged SQLite file).
        """
        check_count("limit", limit)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        check_text("search", search, optional=True)
        check_text("cursor", cursor, optional=True)
        # A search matches substrings, which no index serves: it reads every session.
        bounded = search is None and is_short_page(limit)
        return await self._runner.run(
            sessions.list_sessions, workspace_id, limit, cursor, search, write=False, snapshot=False, bounded=bounded
        )

    async def update_session(
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
        check_text("session_id", session_id, max_length=ID_LENGTH)
        given = {"title": title, "directory": directory, "workspace_id": workspace_id, "metadata": metadata}
        changes = {name: value for name, value in given.items() if value is not UNSET}
        validated = SessionChanges.model_validate(changes).model_dump(include=set(changes))
        return await self._runner.run(sessions.update_session, session_id, validated, write=True, bounded=True)

    async def delete_session(self, session_id: str) -> None:
        """Delete a session with its messages and checkpoints. No error if it is absent."""
        check_text("session_id", session_id, max_length=ID_LENGTH)
        await self._runner.run(sessions.delete_session, session_id, write=True)

    # --- messages -----------------------------------------------------------------------

    async def add_message(
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
        return await self._runner.run(messages.add_message, new, write=True, bounded=True)

    async def get_messages(
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
        check_text("session_id", session_id, max_length=ID_LENGTH)
        check_millis("before", before)
        check_count("limit", limit)
        # Newest first by id: a ``before`` far back may pass over many newer messages.
        bounded = before is None and is_short_page(limit)
        return await self._runner.run(
            messages.get_messages, session_id, before, limit, write=False, snapshot=False, bounded=bounded
        )

    # --- checkpoints --------------------------------------------------------------------

    async def save_checkpoint(
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
        return await self._runner.run(checkpoints.save_checkpoint, new, write=True, bounded=True)

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        """The checkpoint with this id, or None.

        Raises:
            CheckpointCorruptionError: its stored JSON cannot be decoded. A node result
                of the wrong shape raises it when ``node_results`` is first used.
        """
        check_text("checkpoint_id", checkpoint_id, max_length=ID_LENGTH)
        return await self._runner.run(
            checkpoints.get_checkpoint, checkpoint_id, write=False, snapshot=False, bounded=True
        )

    async def get_latest_checkpoint(self, session_id: str, namespace: str | None = None) -> Checkpoint | None:
        """The checkpoint with the highest step (ties: newest, then highest version), in
        ``namespace`` or in any namespace if None. None if there is none or no session.

        Raises:
            CheckpointCorruptionError: its stored JSON cannot be decoded (node results:
                see ``get_checkpoint``).
        """
        check_text("session_id", session_id, max_length=ID_LENGTH)
        check_text("namespace", namespace, optional=True, max_length=NAME_LENGTH)
        return await self._runner.run(
            checkpoints.get_latest_checkpoint, session_id, namespace, write=False, snapshot=False, bounded=True
        )

    async def list_checkpoints(
        self, session_id: str, *, namespace: str | None = None, limit: int | None = None
    ) -> list[Checkpoint]:
        """A session's checkpoints, latest first (the order of ``get_latest_checkpoint``).

        Raises:
            SessionNotFoundError: no such session.
            ValueError: a negative ``limit``.
            CheckpointCorruptionError: a checkpoint's stored JSON cannot be decoded
                (node results: see ``get_checkpoint``).
        """
        check_text("session_id", session_id, max_length=ID_LENGTH)
        check_text("namespace", namespace, optional=True, max_length=NAME_LENGTH)
        check_count("limit", limit)
        # Not bounded, even with a small limit: checkpoints can be large, and decoding a page
        # of them belongs off the event loop.
        return await self._runner.run(
            checkpoints.list_checkpoints, session_id, namespace, limit, write=False, snapshot=False
        )

    async def fork(self, checkpoint_id: str, *, title: str | None = None) -> Session:
        """Start a new session from a checkpoint.

        The new session has the original's directory, workspace and metadata, the title
        ``title`` or ``"Fork of <original title or checkpoint id>"``, a copy of exactly the
        messages that existed when the checkpoint was saved, and one checkpoint copied
        from it with ``source="fork"`` and ``parent_id`` set to it. All or nothing; the
        original session is untouched.

        Raises:
            CheckpointNotFoundError: no such checkpoint.
        """
        check_text("checkpoint_id", checkpoint_id, max_length=ID_LENGTH)
        check_text("title", title, optional=True)
        return await self._runner.run(forks.fork, checkpoint_id, title, write=True)


class SqliteCheckpointStore(SqlAlchemyCheckpointStore):
    """The store on a SQLite file, or on a private in-memory database by default.

    A new file is created with mode 0600 and runs in WAL mode with a busy timeout, so
    several processes and stores can share it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        auto_migrate: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        **options: Any,
    ) -> None:
        super().__init__(sqlite_url(path), auto_migrate=auto_migrate, lock_timeout=lock_timeout, **options)
