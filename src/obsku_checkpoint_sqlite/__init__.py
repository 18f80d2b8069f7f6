"""Durable sessions, messages and graph checkpoints for obsku agents, on SQLite or any SQLAlchemy database.

The async store is here; its blocking twin, with the same names, is in
``obsku_checkpoint_sqlite.sync``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .dto import (
    UNSET,
    Checkpoint,
    CheckpointNodeResult,
    CheckpointRef,
    CycleState,
    NodeResults,
    PruneReport,
    Session,
    SessionPage,
    SessionState,
    SessionSummary,
    StoredMessage,
    StoredToolResult,
    SummaryPage,
    ToolCall,
    TransferReport,
)
from .errors import (
    CheckpointCorruptionError,
    CheckpointNotFoundError,
    CheckpointStoreError,
    CheckpointVersionConflictError,
    DatabaseUnavailableError,
    DriverNotInstalledError,
    EmbeddingDeserializationError,
    EntityNotFoundError,
    ExportFormatError,
    ImportConflictError,
    LockTimeoutError,
    PayloadTooLargeError,
    SchemaError,
    SessionNotFoundError,
    VectorDimensionError,
)
from .jsvalues import JsDate, JsMap, JsSet
from .memory_dto import Entity, EntityRelationship, Fact, MemoryResults
from .store import SqlAlchemyCheckpointStore, SqliteCheckpointStore

try:
    __version__ = version("obsku-checkpoint-sqlite")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

__all__ = [
    "UNSET",
    "Checkpoint",
    "CheckpointCorruptionError",
    "CheckpointNodeResult",
    "CheckpointNotFoundError",
    "CheckpointRef",
    "CheckpointStoreError",
    "CheckpointVersionConflictError",
    "CycleState",
    "DatabaseUnavailableError",
    "DriverNotInstalledError",
    "EmbeddingDeserializationError",
    "Entity",
    "EntityNotFoundError",
    "EntityRelationship",
    "ExportFormatError",
    "Fact",
    "ImportConflictError",
    "JsDate",
    "JsMap",
    "JsSet",
    "LockTimeoutError",
    "MemoryResults",
    "NodeResults",
    "PayloadTooLargeError",
    "PruneReport",
    "SchemaError",
    "Session",
    "SessionNotFoundError",
    "SessionPage",
    "SessionState",
    "SessionSummary",
    "SqlAlchemyCheckpointStore",
    "SqliteCheckpointStore",
    "StoredMessage",
    "StoredToolResult",
    "SummaryPage",
    "ToolCall",
    "TransferReport",
    "VectorDimensionError",
    "__version__",
]
