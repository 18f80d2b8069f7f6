"""The async store's operator methods: summaries, continuing, pruning, export, import and copy.

Written by hand; ``tooling_sync.py`` is generated from it by ``unasyncd`` (``pyproject.toml``).
``store.SqlAlchemyCheckpointStore`` has these methods from ``AsyncToolingMethods``, and
``sync.SqlAlchemyCheckpointStore`` from the generated ``ToolingMethods``.
"""

from __future__ import annotations

import os

from sqlalchemy import URL

from obsku_checkpoint_sqlite.runtime.async_runners import AsyncRunner

from ..bounds import ID_LENGTH, INT32_MAX, NAME_LENGTH, check_count, check_millis, check_text
from ..dto import PruneReport, SessionState, SummaryPage, TransferReport
from ..ops import copying, export, files, importing, retention, summaries
from ..ops.jobs import Progress
from ..runtime.urls import database_url


class AsyncToolingMethods:
    """Operator tooling over the store's runner: listings with counts, retention, transfer."""

    _runner: AsyncRunner

    async def session_summaries(
        self,
        workspace_id: str | None = None,
        *,
        limit: int | None = 50,
        cursor: str | None = None,
        search: str | None = None,
    ) -> SummaryPage:
        """Sessions in ``list_sessions`` order, each with its message count, checkpoint count,
        last message time and latest checkpoint, and the memory store's entity count (its
        entities) and fact count (facts whose source session it is), in one query however
        many sessions.

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
        """Write sessions with their messages and checkpoints, and their entities and the
        facts from them, to ``target`` (a path, ``.gz`` for gzip, or a binary file object)
        in the versioned JSON Lines format of ``obsku_checkpoint_sqlite.transfer``.

        All sessions unless ``workspace_id`` or ``session_ids`` narrow it; facts from no
        session go too unless ``session_ids`` is given (with ``workspace_id``, only that
        workspace's). Embeddings go as stored, byte for byte. Streams: memory does not grow
        with the database. On the async face it runs in a worker thread, off the event loop.

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
        is a no-op). An entity or fact whose own id exists likewise fails the import or is
        left alone, counted in ``skipped_entities`` / ``skipped_facts``; a skipped session's
        entities and facts are skipped with it. With ``new_ids``, every row gets a fresh id
        and references inside the file follow (entities and facts follow their sessions'
        new ids; an entity's ``relationships`` keep their stored text), so the file can be
        imported any number of times, as copies. On the async face it runs in a worker
        thread, off the event loop.

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
        are kept. The memory store's entities and facts are copied too, their embeddings
        byte for byte, and counted in the report (``entities``, ``facts``). On the async
        face the copy runs in a worker thread, through blocking engines for both databases.

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
