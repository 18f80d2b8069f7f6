"""The checkpoint store: the original package's API over any SQLAlchemy database.

``store.py`` holds the async face and is the one written by hand; ``sync.py``, the
blocking face with the same names, is generated from it by ``unasyncd`` (configured in
``pyproject.toml``). Each method validates its input into a DTO (so bad input fails
before a connection is taken) and hands one operation from ``ops``, or one job, to
its runner.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from obsku_checkpoint_sqlite.runtime.async_runners import AsyncRunner, open_async_runner

from .bounds import ID_LENGTH, INT32_MAX, NAME_LENGTH, check_count, check_millis, check_text
from .dto import (
    UNSET,
    Checkpoint,
    CheckpointNodeResult,
    CycleState,
    NewCheckpoint,
    NewMessage,
    NewSession,
    PruneReport,
    Role,
    Session,
    SessionChanges,
    SessionPage,
    SessionState,
    StoredMessage,
    StoredToolResult,
    SummaryPage,
    ToolCall,
    TransferReport,
    Unset,
    check_seconds,
)
from .memory_dto import (
    Entity,
    EntityChanges,
    EntityRelationship,
    Fact,
    MemoryResults,
    NewEntity,
    NewFact,
    check_query,
    check_score,
)
from .ops import (
    checkpoints,
    copying,
    export,
    files,
    forks,
    importing,
    memory,
    memory_search,
    messages,
    retention,
    sessions,
    summaries,
)
from .ops.jobs import Progress
from .runtime.failures import DEFAULT_LOCK_TIMEOUT
from .runtime.sync_runner import is_short_page
from .runtime.urls import database_url, sqlite_url


class SqlAlchemyCheckpointStore:
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

    # --- operator tooling ---------------------------------------------------------------

    async def session_summaries(
        self,
        workspace_id: str | None = None,
        *,
        limit: int | None = 50,
        cursor: str | None = None,
        search: str | None = None,
    ) -> SummaryPage:
        """Sessions in ``list_sessions`` order, each with its message count, checkpoint count,
        last message time and latest checkpoint, in one query however many sessions.

        Returns a list with ``next_cursor`` and ``corrupt`` attributes; ``cursor``,
        ``search`` and damaged sessions work as in ``list_sessions``: a session whose row,
        or whose latest checkpoint's row, cannot be decoded is reported in ``corrupt``
        instead of failing the page.

        Raises:
            ValueError: a negative ``limit`` or a cursor this store did not return.
            CheckpointCorruptionError: the driver cannot read a row at all (text that is
                not UTF-8, a damaged SQLite file).
        """
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        check_count("limit", limit)
        check_text("search", search, optional=True)
        check_text("cursor", cursor, optional=True)
        return await self._runner.run(
            summaries.session_summaries, workspace_id, limit, cursor, search, write=False, snapshot=False
        )

    async def continue_latest(self, workspace_id: str | None = None) -> SessionState | None:
        """The most recently updated session (in ``workspace_id``, if given) with all its
        messages and its latest checkpoint, read together; None if there is no session.

        Raises:
            CheckpointCorruptionError: stored JSON cannot be decoded, the latest session's
                own row included.
        """
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        return await self._runner.run(summaries.continue_latest, workspace_id, write=False)

    async def prune(
        self,
        *,
        keep_last: int | None = None,
        checkpoints_before: int | None = None,
        sessions_idle_before: int | None = None,
        workspace_id: str | None = None,
        protect_lineage: bool = True,
        dry_run: bool = False,
        batch_size: int = 500,
        vacuum: bool = False,
        progress: Progress | None = None,
    ) -> PruneReport:
        """Delete old data; with ``dry_run``, only report what would go.

        - ``keep_last``: keep the newest N checkpoints of each (session, namespace).
        - ``checkpoints_before``: delete checkpoints created before this time (ms).
          With ``keep_last`` too, a checkpoint goes only if both select it.
        - ``sessions_idle_before``: delete sessions (with their messages and checkpoints)
          not updated since this time (ms).

        With ``protect_lineage`` (the default), a checkpoint that a kept checkpoint names
        as its parent, or that a kept fork was made from, is kept, and so is its own
        ancestry and, for an idle session, the session. ``workspace_id`` limits what is
        deleted, not what protects. Deletes run in transactions of ``batch_size`` rows; a
        checkpoint that gains a child, or a session written to, after the plan is spared.
        ``vacuum`` then gives the space back to the file system (SQLite only).

        Raises:
            ValueError: no rule given, or a negative ``keep_last`` or ``batch_size`` < 1.
        """
        check_count("keep_last", keep_last)
        check_millis("checkpoints_before", checkpoints_before)
        check_millis("sessions_idle_before", sessions_idle_before)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        if keep_last is None and checkpoints_before is None and sessions_idle_before is None:
            raise ValueError("prune: give keep_last, checkpoints_before or sessions_idle_before")
        check_count("batch_size", batch_size, minimum=1, maximum=INT32_MAX)
        policy = retention.PrunePolicy(
            keep_last, checkpoints_before, sessions_idle_before, workspace_id, protect_lineage
        )
        job = retention.prune(
            policy, dry_run=dry_run, batch_size=batch_size, vacuum=vacuum,
            dialect_name=self._runner.dialect_name, progress=progress,
        )  # fmt: skip
        return await self._runner.drive(job)

    async def export_sessions(
        self,
        target: files.ExportTarget,
        *,
        workspace_id: str | None = None,
        session_ids: list[str] | None = None,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> TransferReport:
        """Write sessions with their messages and checkpoints to ``target`` (a path, ``.gz``
        for gzip, or a binary file object) in the versioned JSON Lines format of
        ``obsku_checkpoint_sqlite.transfer``. All sessions unless ``workspace_id`` or
        ``session_ids`` narrow it. Streams: memory does not grow with the database. On the
        async face it runs in a worker thread, off the event loop.

        A path gets a new file of mode 0600 (checkpoints hold tool outputs and secrets),
        never written through a symlink, and moved into place only once complete: a
        failed export leaves nothing behind. An existing path is refused unless
        ``overwrite``, which replaces it (a symlink itself, not the file it points to).

        Raises:
            FileExistsError: the path exists and ``overwrite`` is False.
            OSError: the file cannot be written.
        """
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        if session_ids is not None:
            for session_id in session_ids:
                check_text("session_ids", session_id, max_length=ID_LENGTH)
        if type(overwrite) is not bool:
            raise TypeError(f"overwrite: expected a bool, got {type(overwrite).__name__}")
        destination = files.ExportFile(target, overwrite=overwrite)
        return await self._runner.offload(
            export.export_sessions, destination, workspace_id, session_ids, progress, write=False
        )

    async def import_sessions(
        self,
        source: files.ImportSource,
        *,
        new_ids: bool = False,
        on_conflict: export.OnConflict = "fail",
        progress: Progress | None = None,
    ) -> TransferReport:
        """Read an export into this database, in one transaction: on any error nothing is
        imported. ``source`` is a path or a binary file object (such as
        ``sys.stdin.buffer``); gzip is recognised by its first bytes.

        Rows keep their ids, so a round trip is exact. A session whose id exists already
        makes the import fail (``on_conflict="fail"``, the default: importing a file twice
        fails and changes nothing) or is skipped with its rows (``"skip"``: importing twice
        is a no-op). With ``new_ids``, every row gets a fresh id and references inside the
        file follow, so the file can be imported any number of times, as copies. On the
        async face it runs in a worker thread, off the event loop.

        Raises:
            ExportFormatError: the file is corrupt, truncated (a gzip stream too) or of a
                newer format; its ``line`` says where.
            ImportConflictError: an id exists in the target (see ``on_conflict``).
            OSError: the file cannot be read.
        """
        if on_conflict not in ("fail", "skip"):
            raise ValueError(f"on_conflict: 'fail' or 'skip', got {on_conflict!r}")
        with files.ImportFile(source) as readable:
            return await self._runner.offload(
                importing.import_sessions, readable, new_ids, on_conflict, progress, write=True
            )

    async def copy_to(
        self,
        target_url: str | os.PathLike[str] | URL,
        *,
        batch_size: int = export.BATCH_SIZE,
        progress: Progress | None = None,
    ) -> TransferReport:
        """Copy everything in this database into the empty database at ``target_url``.

        The target is brought to the head schema, written in one transaction in batches
        from one snapshot of this database, and its row counts checked against it. Ids
        are kept. On the async face the copy runs in a worker thread, through blocking
        engines for both databases.

        Raises:
            ImportConflictError: the target holds sessions already.
            SchemaError: the target is at a newer schema than this package.
            DatabaseUnavailableError: the target cannot be reached.
            CheckpointStoreError: the counts differ after the copy (nothing is committed).
        """
        check_count("batch_size", batch_size, minimum=1, maximum=INT32_MAX)
        return await self._runner.run_across(
            database_url(target_url), copying.prepare_copy_target, copying.copy_rows, batch_size, progress
        )

    # --- memory: entities and facts ------------------------------------------------------

    @property
    def has_semantic_search(self) -> bool:
        """True: ``search_entities_semantic`` and ``search_facts_semantic`` work on every backend."""
        return True

    async def save_entity(
        self,
        session_id: str,
        *,
        name: str,
        type: str,
        attributes: dict[str, Any] | None = None,
        relationships: list[EntityRelationship] | list[dict[str, Any]] | None = None,
        embedding: list[float] | None = None,
        workspace_id: str | None = None,
    ) -> Entity:
        """Save an entity found in a session; returns it as ``get_entity`` will.

        ``attributes`` and ``relationships`` left out are stored as NULL and read back as
        ``{}`` and ``[]``, as the TypeScript package does.

        Raises:
            SessionNotFoundError: no such session; nothing is written.
            ValueError: invalid input (an embedding that is empty or holds NaN or an
                infinity, attributes the serializer cannot encode...); nothing is written.
        """
        new = NewEntity(
            session_id=session_id,
            name=name,
            type=type,
            attributes=attributes,
            relationships=relationships,
            embedding=embedding,
            workspace_id=workspace_id,
        )
        return await self._runner.run(memory.save_entity, new, write=True)

    async def get_entity(self, entity_id: str) -> Entity | None:
        """The entity with this id, or None.

        Raises:
            CheckpointCorruptionError: its attributes or relationships cannot be read.
        """
        check_text("entity_id", entity_id, max_length=ID_LENGTH)
        return await self._runner.run(memory.get_entity, entity_id, write=False)

    async def list_entities(
        self,
        *,
        session_id: str | None = None,
        workspace_id: str | None = None,
        type: str | None = None,
        limit: int | None = None,
    ) -> MemoryResults[Entity]:
        """Entities, newest first, filtered by each of ``session_id``, ``workspace_id`` and
        ``type`` given (None or ``""``: no filter, as in the TypeScript package).

        ``limit`` None or 0 means no limit. An entity that cannot be read is not in the
        list but in its ``skipped`` attribute, the error naming its row.

        Raises:
            ValueError: a negative ``limit``.
        """
        check_count("limit", limit)
        check_text("session_id", session_id, optional=True, max_length=ID_LENGTH)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        check_text("type", type, optional=True, max_length=NAME_LENGTH)
        return await self._runner.run(memory.list_entities, limit, session_id, workspace_id, type, write=False)

    async def update_entity(
        self,
        entity_id: str,
        *,
        name: str | Unset = UNSET,
        type: str | Unset = UNSET,
        workspace_id: str | Unset | None = UNSET,
        attributes: dict[str, Any] | Unset | None = UNSET,
        relationships: list[EntityRelationship] | list[dict[str, Any]] | Unset | None = UNSET,
        embedding: list[float] | Unset | None = UNSET,
    ) -> None:
        """Replace the fields passed and set ``updated_at``.

        None clears ``workspace_id``, ``attributes`` (read back as ``{}``),
        ``relationships`` (``[]``) or ``embedding`` (NULL: no embedding).

        Raises:
            EntityNotFoundError: no such entity.
            ValueError: invalid input, e.g. ``name=None``; nothing is written.
        """
        check_text("entity_id", entity_id, max_length=ID_LENGTH)
        given = {
            "name": name, "type": type, "workspace_id": workspace_id, "attributes": attributes,
            "relationships": relationships, "embedding": embedding,
        }  # fmt: skip
        changes = {key: value for key, value in given.items() if value is not UNSET}
        for required in ("name", "type"):
            if required in changes and changes[required] is None:
                raise ValueError(f"{required}: an entity always has one, got None")
        validated = EntityChanges.model_validate(changes)
        await self._runner.run(memory.update_entity, entity_id, validated, write=True)

    async def delete_entity(self, entity_id: str) -> None:
        """Delete an entity. No error if it is absent; relationships pointing at it stay."""
        check_text("entity_id", entity_id, max_length=ID_LENGTH)
        await self._runner.run(memory.delete_entity, entity_id, write=True)

    async def save_fact(
        self,
        content: str,
        *,
        confidence: float | None = None,
        workspace_id: str | None = None,
        source_session_id: str | None = None,
        embedding: list[float] | None = None,
    ) -> Fact:
        """Save a fact; returns it as ``get_fact`` will (on PostgreSQL, the confidence in
        the column's 4-byte precision).

        A fact saved without ``confidence`` stores NULL, as the TypeScript package does.

        Raises:
            SessionNotFoundError: ``source_session_id`` names no session; nothing is written.
            ValueError: invalid input (a NaN confidence, an empty embedding...); nothing is written.
        """
        new = NewFact(
            content=content,
            confidence=confidence,
            workspace_id=workspace_id,
            source_session_id=source_session_id,
            embedding=embedding,
        )
        return await self._runner.run(memory.save_fact, new, write=True)

    async def get_fact(self, fact_id: str) -> Fact | None:
        """The fact with this id, or None."""
        check_text("fact_id", fact_id, max_length=ID_LENGTH)
        return await self._runner.run(memory.get_fact, fact_id, write=False)

    async def list_facts(
        self,
        *,
        workspace_id: str | None = None,
        min_confidence: float | None = None,
        limit: int | None = None,
    ) -> list[Fact]:
        """Facts, newest first; with ``min_confidence``, only those with a confidence at
        least that (compared in the column's precision; a NULL confidence never passes).

        Raises:
            ValueError: a negative ``limit`` or a NaN ``min_confidence``.
        """
        check_count("limit", limit)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        bound = check_score("min_confidence", min_confidence)
        return await self._runner.run(memory.list_facts, limit, bound, workspace_id, write=False)

    async def delete_fact(self, fact_id: str) -> None:
        """Delete a fact. No error if it is absent."""
        check_text("fact_id", fact_id, max_length=ID_LENGTH)
        await self._runner.run(memory.delete_fact, fact_id, write=True)

    async def search_entities_semantic(
        self,
        embedding: list[float],
        *,
        top_k: int = 10,
        threshold: float = 0.0,
        session_id: str | None = None,
        workspace_id: str | None = None,
    ) -> MemoryResults[Entity]:
        """The ``top_k`` entities most similar to ``embedding`` (cosine, at least ``threshold``).

        The same entities in the same order with the same scores (``score``) as the
        TypeScript store. A row it cannot score is not in the list but in ``skipped``, the
        error naming the row: where the TypeScript store fails the whole search.

        Raises:
            ValueError: an empty query, or one with NaN or an infinity; a negative ``top_k``.
        """
        query = check_query(embedding)
        check_count("top_k", top_k)
        limit = check_score("threshold", threshold)
        check_text("session_id", session_id, optional=True, max_length=ID_LENGTH)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        return await self._runner.run(
            memory_search.search_entities, query, top_k, limit, session_id, workspace_id, write=False
        )

    async def search_facts_semantic(
        self,
        embedding: list[float],
        *,
        top_k: int = 10,
        threshold: float = 0.0,
        session_id: str | None = None,
        workspace_id: str | None = None,
    ) -> MemoryResults[Fact]:
        """The ``top_k`` facts most similar to ``embedding``; as ``search_entities_semantic``.

        ``session_id`` is accepted and ignored, as by the TypeScript store: facts belong
        to a workspace, not a session.

        Raises:
            ValueError: as ``search_entities_semantic``.
        """
        query = check_query(embedding)
        check_count("top_k", top_k)
        limit = check_score("threshold", threshold)
        check_text("session_id", session_id, optional=True, max_length=ID_LENGTH)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        return await self._runner.run(memory_search.search_facts, query, top_k, limit, workspace_id, write=False)


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
