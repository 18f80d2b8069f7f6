"""Moving data between databases, for tools and scripts: the export format's names and ``copy_database``.

The stores' ``export_sessions``, ``import_sessions`` and ``copy_to`` do the same on
either face; the format is described in ``obsku_checkpoint_sqlite.ops.export``.
"""

from __future__ import annotations

import os

from sqlalchemy import URL

from .dto import TransferReport
from .ops.export import BATCH_SIZE, FORMAT, FORMAT_VERSION, OnConflict
from .ops.files import ExportTarget, ImportSource
from .ops.jobs import Progress
from .sync import SqlAlchemyCheckpointStore

__all__ = [
    "BATCH_SIZE",
    "FORMAT",
    "FORMAT_VERSION",
    "ExportTarget",
    "ImportSource",
    "OnConflict",
    "Progress",
    "copy_database",
]


def copy_database(
    source_url: str | os.PathLike[str] | URL,
    target_url: str | os.PathLike[str] | URL,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> TransferReport:
    """Copy every session, message and checkpoint from one database into another.

    Blocking; from async code use ``SqlAlchemyCheckpointStore.copy_to``. The source must
    be at this package's head schema and is not changed; the target is brought to head
    and must hold no sessions. Rows keep their ids and are streamed in batches; the
    target is written in one transaction and the row counts are compared at the end.

    Raises:
        SchemaError: the source is not at the head schema (upgrade it first).
        ImportConflictError: the target holds sessions already.
        DatabaseUnavailableError: either database cannot be reached.
        CheckpointStoreError: the counts differ after the copy (nothing is committed).
    """
    with SqlAlchemyCheckpointStore(source_url, auto_migrate=False) as source:
        return source.copy_to(target_url, batch_size=batch_size, progress=progress)
