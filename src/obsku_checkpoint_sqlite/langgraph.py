"""LangGraph checkpointers on the checkpoint store: ``ObskuSaver`` and ``AsyncObskuSaver``.

Install with ``pip install "obsku-checkpoint-sqlite[langgraph]"``. A LangGraph thread is a
session of the store (its id is the ``thread_id``); its checkpoints and pending writes
are rows of ``langgraph_checkpoints`` and ``langgraph_writes``, in the same database,
on SQLite, PostgreSQL or MariaDB. Values are serialized by the saver's ``serde``
(LangGraph's ``JsonPlusSerializer`` unless you pass another), so its allow-list
settings hold; nothing is pickled unless that serializer is configured to.

Both savers have both faces, as LangGraph calls either: ``ObskuSaver`` is built on a
blocking engine and runs its async methods in worker threads; ``AsyncObskuSaver`` is
built on the async face and runs its blocking methods on a blocking engine of the same
database (on SQLite, the same connections).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from sqlalchemy import URL, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from . import store, sync
from .db.models import ID_LENGTH, NAME_LENGTH
from .db.values import now_ms
from .ops import thread_upkeep as upkeep
from .ops import threads
from .runtime import bridge
from .runtime.async_runners import AsyncRunner, open_async_runner
from .runtime.failures import DEFAULT_LOCK_TIMEOUT
from .runtime.sync_runner import SyncRunner, is_short_page, open_sync_runner

__all__ = ["AsyncObskuSaver", "ObskuSaver"]

_key = threads.key
_thread_id = threads.config_thread
_namespace = threads.config_namespace


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}}


class _StoreSaver(BaseCheckpointSaver[str]):
    """What both savers share: rows to and from LangGraph's types, and every method on
    both faces, each one operation in one transaction."""

    def __init__(self, *, serde: SerializerProtocol | None, workspace_id: str | None) -> None:
        super().__init__(serde=serde)
        self.workspace_id = workspace_id

    def _run(self, operation: Any, *args: Any, write: bool, bounded: bool = False) -> Any:
        raise NotImplementedError

    async def _arun(self, operation: Any, *args: Any, write: bool, bounded: bool = False) -> Any:
        raise NotImplementedError

    def _checkpoint_row(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> tuple[dict[str, Any], RunnableConfig]:
        thread_id, checkpoint_ns = _thread_id(config), _namespace(config)
        checkpoint_id = _key("checkpoint id", checkpoint["id"], ID_LENGTH)
        parent_id = config["configurable"].get("checkpoint_id")
        type_, blob = self.serde.dumps_typed(checkpoint)
        stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
        try:
            metadata_json = orjson.dumps(stored_metadata).decode()
        except TypeError as exc:
            raise ValueError(f"metadata: not storable as JSON ({exc})") from None
        run_id = stored_metadata.get("run_id")
        row = {
            "session_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id,
            "parent_checkpoint_id": None if parent_id is None else _key("parent checkpoint id", parent_id, ID_LENGTH),
            "type": _key("serializer type", type_, NAME_LENGTH), "checkpoint": blob, "metadata": metadata_json,
            "run_id": None if run_id is None else _key("metadata run_id", run_id, ID_LENGTH), "created_at": now_ms(),
        }  # fmt: skip
        return row, _config(thread_id, checkpoint_ns, checkpoint_id)

    def _write_rows(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> tuple[list[dict[str, Any]], bool]:
        configurable = config["configurable"]
        base = {
            "session_id": _thread_id(config), "checkpoint_ns": _namespace(config),
            "checkpoint_id": _key("checkpoint_id", configurable["checkpoint_id"], ID_LENGTH),
            "task_id": _key("task_id", task_id, ID_LENGTH), "task_path": str(task_path),
        }  # fmt: skip
        rows = []
        for position, (channel, value) in enumerate(writes):
            type_, blob = self.serde.dumps_typed(value)
            rows.append({
                **base, "idx": WRITES_IDX_MAP.get(channel, position), "channel": _key("channel", channel, NAME_LENGTH),
                "type": _key("serializer type", type_, NAME_LENGTH), "value": blob,
            })  # fmt: skip
        # A task's special writes (error, interrupt...) replace its earlier ones; others never do.
        return rows, all(channel in WRITES_IDX_MAP for channel, _ in writes)

    def _tuple(self, found: threads.Found) -> CheckpointTuple:
        thread_id, checkpoint_ns, checkpoint_id, parent_id, type_, blob, metadata = found.row
        writes = sorted(found.writes, key=lambda w: writes_sort_key(w[6], w[2], w[7]))
        return CheckpointTuple(
            _config(thread_id, checkpoint_ns, checkpoint_id),
            self.serde.loads_typed((type_, blob)),
            orjson.loads(metadata),
            None if parent_id is None else _config(thread_id, checkpoint_ns, parent_id),
            [(task, channel, self.serde.loads_typed((t, value))) for _, _, task, channel, t, value, _, _ in writes],
        )

    @staticmethod
    def _query(
        config: RunnableConfig | None, filter: dict[str, Any] | None, before: RunnableConfig | None
    ) -> threads.ListQuery:
        return threads.list_query(config, filter, None if before is None else get_checkpoint_id(before))

    def setup(self) -> None:
        """Bring the database's schema to this package's head; safe to call any number of times."""
        self._run(threads.schema_ready, write=False)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``, else the namespace's newest),
        with its pending writes; None if there is none."""
        found = self._run(
            threads.get_checkpoint, _thread_id(config), _namespace(config), get_checkpoint_id(config),
            write=False, bounded=True,
        )  # fmt: skip
        return None if found is None else self._tuple(found)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (by id): of ``config``'s thread (and namespace, if given),
        or of every thread for None; whose metadata has every ``filter`` key with that value;
        with ids below ``before``'s; at most ``limit``. Read a page at a time."""
        query, after, remaining = self._query(config, filter, before), None, limit
        while remaining is None or remaining > 0:
            page = threads.next_page(query, after, remaining)
            found, after = self._run(threads.list_page, page, write=False, bounded=is_short_page(page.limit))
            for item in found[:remaining]:
                yield self._tuple(item)
            remaining = None if remaining is None else remaining - len(found[:remaining])
            if after is None:
                return

    def put(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, versions: ChannelVersions
    ) -> RunnableConfig:
        """Save a checkpoint (again, under an id saved before) as the child of ``config``'s checkpoint."""
        row, saved = self._checkpoint_row(config, checkpoint, metadata)
        self._run(threads.put_checkpoint, row, self.workspace_id, write=True, bounded=True)
        return saved

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Save a task's pending writes for ``config``'s checkpoint."""
        rows, replace = self._write_rows(config, writes, task_id, task_path)
        if rows:
            self._run(threads.put_writes, rows, replace, self.workspace_id, write=True, bounded=True)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes (and its session, if the saver made it and
        it holds nothing else)."""
        self._run(upkeep.delete_thread, _key("thread_id", thread_id, ID_LENGTH), write=True)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints these runs saved, in every thread, with their writes."""
        ids = [_key("run_id", run_id, ID_LENGTH) for run_id in run_ids]
        if ids:
            self._run(upkeep.delete_for_runs, ids, write=True)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's every checkpoint and write, ids kept, into a thread with none yet.

        Raises:
            SessionNotFoundError: no thread ``source_thread_id``.
            ImportConflictError: the target holds LangGraph checkpoints already.
        """
        source, target = _key("thread_id", source_thread_id, ID_LENGTH), _key("thread_id", target_thread_id, ID_LENGTH)
        self._run(upkeep.copy_thread, source, target, self.workspace_id, write=True)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads, each in a transaction of its own.

        ``"keep_latest"`` keeps each namespace's newest checkpoint with what it needs to load
        as before (its pending writes; for a DeltaChannel, the ancestors back to each
        channel's snapshot); ``"delete"`` deletes every checkpoint, as ``delete_thread``.
        """
        for thread_id in upkeep.prune_targets(thread_ids, strategy):
            self._run(upkeep.prune_thread, thread_id, strategy == "keep_latest", write=True)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The version after ``current``, in the form LangGraph's own savers write."""
        return threads.next_version(current)

    async def asetup(self) -> None:
        """``setup`` on the async face."""
        await self._arun(threads.schema_ready, write=False)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """``get_tuple`` on the async face."""
        found = await self._arun(
            threads.get_checkpoint, _thread_id(config), _namespace(config), get_checkpoint_id(config),
            write=False, bounded=True,
        )  # fmt: skip
        return None if found is None else self._tuple(found)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """``list`` on the async face."""
        query, after, remaining = self._query(config, filter, before), None, limit
        while remaining is None or remaining > 0:
            page = threads.next_page(query, after, remaining)
            found, after = await self._arun(threads.list_page, page, write=False, bounded=is_short_page(page.limit))
            for item in found[:remaining]:
                yield self._tuple(item)
            remaining = None if remaining is None else remaining - len(found[:remaining])
            if after is None:
                return

    async def aput(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, versions: ChannelVersions
    ) -> RunnableConfig:
        """``put`` on the async face."""
        row, saved = self._checkpoint_row(config, checkpoint, metadata)
        await self._arun(threads.put_checkpoint, row, self.workspace_id, write=True, bounded=True)
        return saved

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """``put_writes`` on the async face."""
        rows, replace = self._write_rows(config, writes, task_id, task_path)
        if rows:
            await self._arun(threads.put_writes, rows, replace, self.workspace_id, write=True, bounded=True)

    async def adelete_thread(self, thread_id: str) -> None:
        """``delete_thread`` on the async face."""
        await self._arun(upkeep.delete_thread, _key("thread_id", thread_id, ID_LENGTH), write=True)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """``delete_for_runs`` on the async face."""
        ids = [_key("run_id", run_id, ID_LENGTH) for run_id in run_ids]
        if ids:
            await self._arun(upkeep.delete_for_runs, ids, write=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """``copy_thread`` on the async face."""
        source, target = _key("thread_id", source_thread_id, ID_LENGTH), _key("thread_id", target_thread_id, ID_LENGTH)
        await self._arun(upkeep.copy_thread, source, target, self.workspace_id, write=True)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``prune`` on the async face."""
        for thread_id in upkeep.prune_targets(thread_ids, strategy):
            await self._arun(upkeep.prune_thread, thread_id, strategy == "keep_latest", write=True)


class ObskuSaver(_StoreSaver):
    """A LangGraph checkpointer on the checkpoint store's blocking face.

    Args:
        conn: a database URL (``sqlite:///file.db``, ``postgresql://...``, ``mariadb://...``),
            the path of a SQLite file (``":memory:"`` for a private in-memory database), an
            ``Engine`` you built (and dispose of), or a store of ``obsku_checkpoint_sqlite.sync``
            (closed by you, not by the saver).
        serde: LangGraph's serializer for checkpoints and writes (``JsonPlusSerializer()``).
        workspace_id: the workspace of the sessions the saver makes for new threads.
        lock_timeout: as the store's: how long an operation waits for another writer.
        **options: passed to SQLAlchemy's ``create_engine`` when given a URL.

    The schema is brought to head on first use; ``setup()`` does it now. Async methods run
    in worker threads.

    Raises:
        ValueError: a ``thread_id`` over 128 characters, a ``checkpoint_ns`` over 255, or
            metadata that is not JSON; nothing is written.
    """

    def __init__(
        self,
        conn: str | os.PathLike[str] | URL | Engine | sync.SqlAlchemyCheckpointStore,
        *,
        serde: SerializerProtocol | None = None,
        workspace_id: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        **options: Any,
    ) -> None:
        super().__init__(serde=serde, workspace_id=workspace_id)
        self._owned = not isinstance(conn, sync.SqlAlchemyCheckpointStore)
        if isinstance(conn, sync.SqlAlchemyCheckpointStore):
            self._runner: SyncRunner = conn._runner
        else:
            self._runner = open_sync_runner(cast(Any, conn), auto_migrate=True, lock_timeout=lock_timeout, **options)

    @classmethod
    @contextlib.contextmanager
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> Iterator[ObskuSaver]:
        """A saver on ``conn_string`` (a URL or SQLite path), closed when the block ends."""
        with contextlib.closing(cls(conn_string, **kwargs)) as saver:
            yield saver

    def close(self) -> None:
        """Release the saver's connections (not those of a store or engine you passed in)."""
        if self._owned:
            self._runner.close()

    def _run(self, operation: Any, *args: Any, write: bool, bounded: bool = False) -> Any:
        return self._runner.run(operation, *args, write=write, bounded=bounded)

    async def _arun(self, operation: Any, *args: Any, write: bool, bounded: bool = False) -> Any:
        return await bridge.in_worker_thread(functools.partial(self._runner.run, operation, *args, write=write))


class AsyncObskuSaver(_StoreSaver):
    """A LangGraph checkpointer on the checkpoint store's async face.

    Args:
        conn: a database URL or SQLite path (as for ``ObskuSaver``), an ``AsyncEngine``
            you built (and dispose of), or an ``obsku_checkpoint_sqlite.SqlAlchemyCheckpointStore``
            (closed by you, not by the saver).
        serde: LangGraph's serializer for checkpoints and writes (``JsonPlusSerializer()``).
        workspace_id: the workspace of the sessions the saver makes for new threads.
        lock_timeout: as the store's: how long an operation waits for another writer.
        **options: passed to SQLAlchemy's ``create_async_engine`` when given a URL.

    On SQLite, short operations run on the event loop when the database is free and in a
    worker thread otherwise, as the store's do. Blocking methods (``graph.get_state``...)
    work too: on a server through a blocking engine the saver opens on first use.

    Raises:
        ValueError: as ``ObskuSaver``.
    """

    def __init__(
        self,
        conn: str | os.PathLike[str] | URL | AsyncEngine | store.SqlAlchemyCheckpointStore,
        *,
        serde: SerializerProtocol | None = None,
        workspace_id: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        **options: Any,
    ) -> None:
        super().__init__(serde=serde, workspace_id=workspace_id)
        self._owned = not isinstance(conn, store.SqlAlchemyCheckpointStore)
        if isinstance(conn, store.SqlAlchemyCheckpointStore):
            self._runner: AsyncRunner = conn._runner
        else:
            self._runner = open_async_runner(cast(Any, conn), auto_migrate=True, lock_timeout=lock_timeout, **options)
        self._blocking: tuple[SyncRunner, bool] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def from_conn_string(cls, conn_string: str, **kwargs: Any) -> AsyncIterator[AsyncObskuSaver]:
        """A saver on ``conn_string`` (a URL or SQLite path), closed when the block ends."""
        async with contextlib.aclosing(cls(conn_string, **kwargs)) as saver:
            yield saver

    async def aclose(self) -> None:
        """Release the saver's connections (not those of a store or engine you passed in)."""
        blocking, self._blocking = self._blocking, None
        if blocking is not None and blocking[1]:
            await bridge.in_worker_thread(blocking[0].close)
        if self._owned:
            await self._runner.close()

    async def _arun(self, operation: Any, *args: Any, write: bool, bounded: bool = False) -> Any:
        return await self._runner.run(operation, *args, write=write, bounded=bounded)

    def _run(self, operation: Any, *args: Any, write: bool, bounded: bool = False) -> Any:
        if self._blocking is None:
            self._blocking = bridge.blocking_twin(self._runner)
        return self._blocking[0].run(operation, *args, write=write)
