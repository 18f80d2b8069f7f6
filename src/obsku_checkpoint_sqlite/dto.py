"""Pydantic DTOs: what the store takes and returns.

Fields are snake_case; ``model_dump(by_alias=True)`` gives the original package's
camelCase shape, and inputs accept either spelling. Payload models keep keys they do
not know (``extra="allow"``), so data written by a newer TypeScript package survives
a read and a rewrite here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic_core import CoreSchema, core_schema

from .bounds import Id, Name, StoredCount, StoredVersion, Text
from .errors import CheckpointCorruptionError

Role = Literal["user", "assistant", "system", "tool"]
CheckpointSource = Literal["input", "loop", "interrupt", "fork"]
NodeStatus = Literal["pending", "running", "completed", "failed", "skipped"]
LegacyNodeStatus = Literal["Complete", "Failed", "Skipped"]
"""Spellings of ``completed``, ``failed`` and ``skipped`` that the TypeScript store also takes
(those of the obsku framework's own node results); kept as stored, read and written alike."""
_CANONICAL_STATUS: dict[str, NodeStatus] = {
    **{status: status for status in get_args(NodeStatus)},
    "Complete": "completed", "Failed": "failed", "Skipped": "skipped",
}  # fmt: skip

# Strict: "5", 5.0 and True are not counts; a caller passing them has a bug.
Millis = Annotated[int, Field(strict=True)]
Count = Annotated[int, Field(strict=True, ge=0)]
Version = Annotated[int, Field(strict=True, ge=1)]


class _Dto(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True)


class _Payload(_Dto):
    model_config = ConfigDict(extra="allow")


class ToolCall(_Payload):
    """A tool invocation requested by the assistant."""

    tool_use_id: Text
    name: Text
    input: dict[Text, Any]


class StoredToolResult(_Payload):
    """The result of a tool call, as stored with the message that carries it."""

    tool_use_id: Text
    content: Text
    status: Text | None = None
    full_output_ref: Text | None = None


class CheckpointNodeResult(_Payload):
    """The state of one graph node at a checkpoint.

    ``status`` is one of ``NodeStatus``, or one of the ``LegacyNodeStatus`` spellings
    (``Complete``, ``Failed``, ``Skipped``) that the TypeScript store takes and keeps as
    they are: this package reads and writes them unchanged too, so a checkpoint saved
    again stores the same text. ``canonical_status`` names either kind in lower case.
    """

    # One Literal, not a union of two: a bad status gets one message listing every spelling.
    status: Literal[NodeStatus, LegacyNodeStatus]
    output: Any = None
    error: Text | None = None
    started_at: Millis | None = None
    completed_at: Millis | None = None

    @property
    def canonical_status(self) -> NodeStatus:
        """``status`` with ``Complete``, ``Failed`` and ``Skipped`` as ``completed``, ``failed``
        and ``skipped``, the obsku framework's reading of them when it resumes a graph."""
        return _CANONICAL_STATUS[self.status]


class NodeResults(Mapping[str, CheckpointNodeResult]):
    """A checkpoint's node results by node id: a read-only mapping.

    Results read from the database are parsed with the checkpoint, so malformed JSON
    fails the read, but validated (and their JsonPlus tags revived) on first use, all
    at once: validating 20 results was more than half the cost of listing
    checkpoints, and a listing is mostly read for its steps and times. A stored result
    of the wrong shape raises ``CheckpointCorruptionError``, naming the checkpoint row,
    at that first use; inside ``model_dump``, pydantic wraps it in a
    ``PydanticSerializationError`` that carries its message.
    ``NodeResults({...})`` holds results that are already validated.
    """

    __slots__ = ("_load", "_results")

    def __init__(self, results: Mapping[str, CheckpointNodeResult] | None = None) -> None:
        self._results: dict[str, CheckpointNodeResult] | None = dict(results or {})
        self._load: Callable[[], dict[str, CheckpointNodeResult]] | None = None

    @classmethod
    def deferred(cls, load: Callable[[], dict[str, CheckpointNodeResult]]) -> NodeResults:
        """Results that ``load`` validates the first time any of them is read."""
        results = cls.__new__(cls)
        results._results, results._load = None, load
        return results

    def _loaded(self) -> dict[str, CheckpointNodeResult]:
        results = self._results
        if results is None:
            load = self._load
            if load is None:  # another thread has just loaded them
                assert self._results is not None
                return self._results
            # Two threads may both validate; each gets an equal result, so no lock.
            # Set before _load is dropped (with the stored text it holds), so a thread
            # that finds no _load finds the results.
            results = self._results = load()
            self._load = None
        return results

    def __getitem__(self, node_id: str) -> CheckpointNodeResult:
        return self._loaded()[node_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        try:
            return f"NodeResults({self._loaded()!r})"
        except Exception as exc:  # a repr must not raise, for logs and debuggers
            return f"NodeResults(<{type(exc).__name__}: {exc}>)"

    def __reduce__(self) -> tuple[type[NodeResults], tuple[dict[str, CheckpointNodeResult]]]:
        return (NodeResults, (self._loaded(),))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        as_dict = handler.generate_schema(dict[str, CheckpointNodeResult])
        return core_schema.no_info_wrap_validator_function(
            cls._validate,
            as_dict,
            serialization=core_schema.plain_serializer_function_ser_schema(cls._loaded, return_schema=as_dict),
        )

    @classmethod
    def _validate(cls, value: Any, validate_dict: core_schema.ValidatorFunctionWrapHandler) -> NodeResults:
        return value if isinstance(value, NodeResults) else cls(validate_dict(value))


class CycleState(_Payload):
    """Where a graph cycle stands: the edge that loops back and the iteration count."""

    back_edge: Text
    iteration: Count


class Session(_Dto):
    """A conversation or run: the unit that owns messages and checkpoints."""

    id: str
    directory: str
    created_at: Millis
    updated_at: Millis
    title: str | None = None
    workspace_id: str | None = None
    metadata: dict[str, Any] | None = None
    forked_from_session_id: str | None = None
    """The session this one was forked from, if it is a fork."""
    forked_from_checkpoint_id: str | None = None
    """The checkpoint this one was forked from, if it is a fork."""


class StoredMessage(_Dto):
    """A message in a session's history."""

    id: int
    session_id: str
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_results: list[StoredToolResult] | None = None
    tokens_in: Count | None = None
    tokens_out: Count | None = None
    created_at: Millis


class Checkpoint(_Dto):
    """A snapshot of a graph execution, from which a run resumes or forks."""

    id: str
    session_id: str
    namespace: str = ""
    version: Version
    step: Count
    node_results: NodeResults
    pending_nodes: list[str] = Field(default_factory=list)
    source: CheckpointSource
    parent_id: str | None = None
    node_id: str | None = None
    cycle_state: CycleState | None = None
    created_at: Millis


class SessionPage(list[Session]):
    """One page of sessions, most recently updated first: a list with the next page's cursor.

    A session whose stored row cannot be read is not in the list but in ``corrupt``.
    """

    def __init__(
        self,
        sessions: Iterable[Session] = (),
        *,
        next_cursor: str | None = None,
        corrupt: Iterable[CheckpointCorruptionError] = (),
    ) -> None:
        super().__init__(sessions)
        self.next_cursor = next_cursor
        """Pass as ``cursor=`` to get the next page; None on the last page."""
        self.corrupt = list(corrupt)
        """The page's sessions that could not be read, each error naming its row and column."""


class CheckpointRef(_Dto):
    """The identifying fields of a checkpoint, for listings."""

    id: str
    namespace: str
    step: Count
    version: Version
    source: str | None
    created_at: Millis


class SessionSummary(_Dto):
    """A session with its counts and where it stands, for listings."""

    session: Session
    message_count: int
    checkpoint_count: int
    last_message_at: Millis | None = None
    latest_checkpoint: CheckpointRef | None = None
    entity_count: int = 0
    fact_count: int = 0
    """The memory store's entities found in the session, and facts whose source it is."""


class SummaryPage(list[SessionSummary]):
    """One page of session summaries: a list with the next page's cursor.

    A session whose row, or latest checkpoint's row, cannot be read is not in the list
    but in ``corrupt``.
    """

    def __init__(
        self,
        summaries: Iterable[SessionSummary] = (),
        *,
        next_cursor: str | None = None,
        corrupt: Iterable[CheckpointCorruptionError] = (),
    ) -> None:
        super().__init__(summaries)
        self.next_cursor = next_cursor
        self.corrupt = list(corrupt)
        """The page's sessions that could not be read, each error naming its row and column."""


class SessionState(_Dto):
    """A session with its messages and latest checkpoint: everything needed to resume."""

    session: Session
    messages: list[StoredMessage]
    latest_checkpoint: Checkpoint | None = None


class PruneReport(_Dto):
    """What ``prune`` deleted or, on a dry run, would delete."""

    dry_run: bool
    sessions: int
    """Idle sessions deleted with their messages and checkpoints."""
    checkpoints: int
    """Checkpoints deleted, those of deleted sessions included."""
    messages: int
    protected_checkpoints: int
    """Checkpoints the rules selected but kept because a kept checkpoint or fork names them."""
    session_ids: list[str]
    vacuumed: bool = False


class TransferReport(_Dto):
    """The rows an export, import or copy moved."""

    sessions: int
    messages: int
    checkpoints: int
    skipped_sessions: int = 0
    """Sessions an import left alone because their id existed (``on_conflict="skip"``)."""
    entities: int = 0
    facts: int = 0
    """Entities and facts of the memory store moved (an import counts none of skipped sessions)."""
    skipped_entities: int = 0
    skipped_facts: int = 0
    """Entities and facts an import left alone because their own id existed (``on_conflict="skip"``)."""


# Validated inputs. The store builds these from its keyword arguments, so bad input
# fails here, before any connection is taken.
# Ids, names and counts within their columns' bounds, text strictly str (see bounds).


class NewSession(_Dto):
    directory: Text
    title: Text | None = None
    workspace_id: Name | None = None
    metadata: dict[Text, Any] | None = None


class SessionChanges(_Dto):
    """The fields ``update_session`` may change; only those explicitly set are applied."""

    directory: Text = ""
    title: Text | None = None
    workspace_id: Name | None = None
    metadata: dict[Text, Any] | None = None


class NewMessage(_Dto):
    session_id: Id
    role: Role
    content: Text | None = None
    tool_calls: list[ToolCall] | None = None
    tool_results: list[StoredToolResult] | None = None
    tokens_in: StoredCount | None = None
    tokens_out: StoredCount | None = None


class NewCheckpoint(_Dto):
    session_id: Id
    namespace: Name = ""
    version: StoredVersion | None = None
    step: StoredCount
    node_results: dict[Text, CheckpointNodeResult]
    pending_nodes: list[Text] = Field(default_factory=list)
    source: CheckpointSource
    parent_id: Id | None = None
    node_id: Name | None = None
    cycle_state: CycleState | None = None


class Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = Unset.UNSET
"""The default of ``update_session``'s keywords: leave the field as it is."""


def check_seconds(name: str, value: float) -> None:
    """Refuse a duration argument that is not a positive, finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected seconds as an int or float, got {type(value).__name__}")
    if not 0 < value < float("inf"):
        raise ValueError(f"{name}: must be a positive number of seconds, got {value!r}")


def checkpoint_diff(before: Checkpoint, after: Checkpoint) -> dict[str, Any]:
    """What differs between two checkpoints' node results and pending nodes."""
    old = {name: result.model_dump(mode="json") for name, result in before.node_results.items()}
    new = {name: result.model_dump(mode="json") for name, result in after.node_results.items()}
    changed: dict[str, dict[str, list[Any]]] = {}
    for name in sorted(old.keys() & new.keys()):
        fields = sorted(old[name].keys() | new[name].keys())
        difference = {
            key: [old[name].get(key), new[name].get(key)] for key in fields if old[name].get(key) != new[name].get(key)
        }
        if difference:
            changed[name] = difference
    return {
        "from": before.id,
        "to": after.id,
        "step": [before.step, after.step],
        "nodes": {
            "added": sorted(new.keys() - old.keys()),
            "removed": sorted(old.keys() - new.keys()),
            "changed": changed,
        },
        "pending_added": [node for node in after.pending_nodes if node not in before.pending_nodes],
        "pending_removed": [node for node in before.pending_nodes if node not in after.pending_nodes],
    }
