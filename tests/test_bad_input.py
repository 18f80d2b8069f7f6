"""Bad input never reaches the database (issue 4, item 4).

Each case must raise ``ValueError`` or ``TypeError`` (pydantic's ``ValidationError`` is a
``ValueError``) whose message names the offending field, and leave the database exactly
as it was: the cases run one after another on one session, and the test compares a
snapshot of everything it could have touched after each of them. Every backend, both faces.

The payload half: very large values, any Unicode, SQL metacharacters and NUL characters
store and load exactly, except NUL in PostgreSQL text columns, which is refused cleanly.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest

from obsku_checkpoint_sqlite import Checkpoint, CheckpointNotFoundError, SessionNotFoundError

NAIVE = datetime(2026, 1, 1, 12, 0)  # no tzinfo: its instant is unknown
LONE_SURROGATE = "bad \udc80 text"
NODE = {"status": "completed"}

# (label, keyword overrides, text the error must contain)
MESSAGE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown role", {"role": "robot"}, "role"),
    ("role None", {"role": None}, "role"),
    ("negative tokens_in", {"tokens_in": -1}, "tokens_in"),
    ("negative tokens_out", {"tokens_out": -5}, "tokens_out"),
    ("tokens as str", {"tokens_in": "5"}, "tokens_in"),
    ("tokens as float", {"tokens_out": 5.0}, "tokens_out"),
    ("tokens as bool", {"tokens_in": True}, "tokens_in"),
    ("tokens beyond 32 bits", {"tokens_in": 2**31}, "tokens_in"),
    ("content as int", {"content": 42}, "content"),
    ("content with a lone surrogate", {"content": LONE_SURROGATE}, "content"),
    ("tool_calls as str", {"tool_calls": "call it"}, "tool_calls"),
    ("tool call as str", {"tool_calls": ["call it"]}, "tool_calls"),
    ("tool call without id", {"tool_calls": [{"name": "grep", "input": {}}]}, "toolUseId"),
    ("tool call without name", {"tool_calls": [{"tool_use_id": "t1", "input": {}}]}, "name"),
    ("tool call input not a dict", {"tool_calls": [{"tool_use_id": "t1", "name": "n", "input": [1]}]}, "input"),
    (
        "tool call input unencodable",
        {"tool_calls": [{"tool_use_id": "t1", "name": "n", "input": {"handle": object()}}]},
        "tool_calls[0]['input']['handle']",
    ),
    (
        "tool call input NaN",
        {"tool_calls": [{"tool_use_id": "t1", "name": "n", "input": {"score": math.nan}}]},
        "tool_calls[0]['input']['score']",
    ),
    ("tool_results as dict", {"tool_results": {"tool_use_id": "t1", "content": "x"}}, "tool_results"),
    ("tool result without content", {"tool_results": [{"tool_use_id": "t1"}]}, "content"),
    ("tool result without id", {"tool_results": [{"content": "x"}]}, "toolUseId"),
]

CHECKPOINT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown source", {"source": "replay"}, "source"),
    ("source None", {"source": None}, "source"),
    ("negative step", {"step": -1}, "step"),
    ("step as str", {"step": "1"}, "step"),
    ("step as float", {"step": 1.0}, "step"),
    ("step beyond 32 bits", {"step": 2**31}, "step"),
    ("version 0", {"version": 0}, "version"),
    ("negative version", {"version": -3}, "version"),
    ("version as str", {"version": "2"}, "version"),
    ("version beyond 32 bits", {"version": 2**31}, "version"),
    ("node_results as list", {"node_results": [NODE]}, "node_results"),
    ("node result not a dict", {"node_results": {"a": "completed"}}, "node_results.a"),
    ("unknown node status", {"node_results": {"a": {"status": "exploded"}}}, "status"),
    ("node result without status", {"node_results": {"a": {"output": 1}}}, "status"),
    ("started_at as str", {"node_results": {"a": {"status": "running", "started_at": "now"}}}, "started_at"),
    ("output infinite", {"node_results": {"a": {**NODE, "output": math.inf}}}, "node_results['a']['output']"),
    ("output unencodable", {"node_results": {"a": {**NODE, "output": {1, object()}}}}, "node_results['a']"),
    ("output naive datetime", {"node_results": {"a": {**NODE, "output": [NAIVE]}}}, "node_results['a']['output'][0]"),
    ("output lone surrogate", {"node_results": {"a": {**NODE, "output": LONE_SURROGATE}}}, "node_results"),
    ("pending_nodes as str", {"pending_nodes": "abc"}, "pending_nodes"),
    ("pending node not a str", {"pending_nodes": [1]}, "pending_nodes"),
    ("cycle_state without back_edge", {"cycle_state": {"iteration": 1}}, "backEdge"),
    ("negative iteration", {"cycle_state": {"back_edge": "a->b", "iteration": -1}}, "iteration"),
    ("cycle_state as str", {"cycle_state": "a->b"}, "cycle_state"),
    ("namespace too long", {"namespace": "n" * 256}, "namespace"),
    ("namespace None", {"namespace": None}, "namespace"),
    ("namespace with a lone surrogate", {"namespace": LONE_SURROGATE}, "namespace"),
    ("node_id too long", {"node_id": "n" * 256}, "node_id"),
    ("parent_id too long", {"parent_id": "p" * 129}, "parent_id"),
    ("session_id as int", {"session_id": 5}, "session_id"),
]

SESSION_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("directory None", {"directory": None}, "directory"),
    ("directory with a lone surrogate", {"directory": LONE_SURROGATE}, "directory"),
    ("title as int", {"title": 5}, "title"),
    ("title with a lone surrogate", {"title": LONE_SURROGATE}, "title"),
    ("workspace_id too long", {"workspace_id": "w" * 256}, "workspace_id"),
    ("metadata as str", {"metadata": "{}"}, "metadata"),
    ("metadata NaN", {"metadata": {"score": math.nan}}, "metadata['score']"),
    ("metadata naive datetime", {"metadata": {"at": NAIVE}}, "metadata['at']"),
    ("metadata unencodable", {"metadata": {"deep": [{"x": object()}]}}, "metadata['deep'][0]['x']"),
    ("metadata lone surrogate", {"metadata": {"text": LONE_SURROGATE}}, "metadata['text']"),
    ("metadata lone surrogate key", {"metadata": {LONE_SURROGATE: 1}}, "metadata"),
]


async def snapshot(store: Any, session_id: str, workspace: str) -> Any:
    """Everything a refused call could have written, as comparable values."""
    sessions = await store.list_sessions(workspace)
    messages = await store.get_messages(session_id)
    checkpoints = await store.list_checkpoints(session_id)
    return (
        [session.model_dump() for session in sessions],
        [message.model_dump() for message in messages],
        [checkpoint.model_dump() for checkpoint in checkpoints],
    )


async def refuse_each(store: Any, workspace: str, call: Any, cases: list[tuple[str, dict[str, Any], str]]) -> None:
    """Run every case; collect those that were accepted, raised the wrong thing or wrote."""
    session = await store.create_session("/work", title="bad input", workspace_id=workspace)
    await store.add_message(session.id, role="user", content="already here")
    await store.save_checkpoint(session_id=session.id, step=0, node_results={"a": NODE}, source="input")
    before = await snapshot(store, session.id, workspace)
    problems = []
    for label, overrides, field in cases:
        try:
            await call(store, session.id, workspace, overrides)
        except (ValueError, TypeError) as exc:
            if field not in str(exc):
                problems.append(f"{label}: the error does not name {field!r}: {exc}")
        except Exception as exc:
            problems.append(f"{label}: raised {type(exc).__name__} (not ValueError/TypeError): {exc}")
        else:
            problems.append(f"{label}: accepted")
        if await snapshot(store, session.id, workspace) != before:
            problems.append(f"{label}: the database changed")
            before = await snapshot(store, session.id, workspace)
    assert not problems, "\n".join(problems)


async def test_bad_messages_are_refused_and_write_nothing(store: Any, workspace: str) -> None:
    async def call(store: Any, session_id: str, _workspace: str, overrides: dict[str, Any]) -> None:
        await store.add_message(**{"session_id": session_id, "role": "user", "content": "x", **overrides})

    await refuse_each(store, workspace, call, MESSAGE_CASES)


async def test_bad_checkpoints_are_refused_and_write_nothing(store: Any, workspace: str) -> None:
    async def call(store: Any, session_id: str, _workspace: str, overrides: dict[str, Any]) -> None:
        arguments = {"session_id": session_id, "step": 1, "node_results": {"a": NODE}, "source": "loop"}
        await store.save_checkpoint(**{**arguments, **overrides})

    await refuse_each(store, workspace, call, CHECKPOINT_CASES)


async def test_bad_sessions_are_refused_and_write_nothing(store: Any, workspace: str) -> None:
    async def create(store: Any, _session_id: str, workspace: str, overrides: dict[str, Any]) -> None:
        await store.create_session(**{"directory": "/w", "workspace_id": workspace, **overrides})

    async def update(store: Any, session_id: str, _workspace: str, overrides: dict[str, Any]) -> None:
        await store.update_session(session_id, **overrides)

    await refuse_each(store, workspace, create, SESSION_CASES)
    await refuse_each(store, workspace, update, SESSION_CASES)


async def test_bad_arguments_of_reads_and_forks_are_refused(store: Any, workspace: str) -> None:
    async def call(store: Any, session_id: str, _workspace: str, overrides: dict[str, Any]) -> None:
        method, arguments = overrides["call"]
        checkpoint: Checkpoint = (await store.list_checkpoints(session_id))[0]
        arguments = [checkpoint.id if argument == "<checkpoint>" else argument for argument in arguments]
        arguments = [session_id if argument == "<session>" else argument for argument in arguments]
        keywords = overrides.get("keywords", {})
        await getattr(store, method)(*arguments, **keywords)

    cases: list[tuple[str, dict[str, Any], str]] = [
        ("negative message limit", {"call": ("get_messages", ["<session>"]), "keywords": {"limit": -1}}, "limit"),
        ("message limit as str", {"call": ("get_messages", ["<session>"]), "keywords": {"limit": "3"}}, "limit"),
        ("message limit as float", {"call": ("get_messages", ["<session>"]), "keywords": {"limit": 1.5}}, "limit"),
        ("before as str", {"call": ("get_messages", ["<session>"]), "keywords": {"before": "yesterday"}}, "before"),
        (
            "negative checkpoint limit",
            {"call": ("list_checkpoints", ["<session>"]), "keywords": {"limit": -2}},
            "limit",
        ),
        ("negative session limit", {"call": ("list_sessions", []), "keywords": {"limit": -1}}, "limit"),
        ("session limit as bool", {"call": ("list_sessions", []), "keywords": {"limit": True}}, "limit"),
        ("forged cursor", {"call": ("list_sessions", []), "keywords": {"cursor": "not-a-cursor"}}, "cursor"),
        ("workspace as int", {"call": ("list_sessions", [5])}, "workspace_id"),
        # On MariaDB a number matches every id that starts with it: these must not reach it.
        ("get_session(5)", {"call": ("get_session", [5])}, "session_id"),
        ("delete_session(5)", {"call": ("delete_session", [5])}, "session_id"),
        ("update_session(5)", {"call": ("update_session", [5]), "keywords": {"title": "t"}}, "session_id"),
        ("get_messages(5)", {"call": ("get_messages", [5])}, "session_id"),
        ("get_checkpoint(5)", {"call": ("get_checkpoint", [5])}, "checkpoint_id"),
        ("get_latest_checkpoint(5)", {"call": ("get_latest_checkpoint", [5])}, "session_id"),
        ("list_checkpoints(5)", {"call": ("list_checkpoints", [5])}, "session_id"),
        ("namespace as int", {"call": ("list_checkpoints", ["<session>"]), "keywords": {"namespace": 0}}, "namespace"),
        ("fork(5)", {"call": ("fork", [5])}, "checkpoint_id"),
        ("fork title as int", {"call": ("fork", ["<checkpoint>"]), "keywords": {"title": 5}}, "title"),
        ("fork title surrogate", {"call": ("fork", ["<checkpoint>"]), "keywords": {"title": LONE_SURROGATE}}, "title"),
    ]
    await refuse_each(store, workspace, call, cases)


# --- what must be accepted, exactly -----------------------------------------------------

SQL_METACHARACTERS = "'; DROP TABLE sessions; -- \" ` \\ \\' %_ $$ $1 ? :name /* */ \x1a \r\n\t"
UNICODE = "héllo wörld • 中文 • العربية • עברית • 🧪🚀 • e\u0301 • \u200d\u2028\ufeff • 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
TRICKY = SQL_METACHARACTERS + UNICODE


async def test_unicode_and_sql_metacharacters_round_trip_everywhere(store: Any, workspace: str) -> None:
    metadata = {TRICKY: TRICKY, "nested": [TRICKY, {"k": TRICKY}], "__type": TRICKY}
    session = await store.create_session(TRICKY, title=TRICKY, workspace_id=workspace + TRICKY[:40], metadata=metadata)
    calls = [{"tool_use_id": TRICKY[:50], "name": TRICKY, "input": {TRICKY: TRICKY}}]
    results = [{"tool_use_id": TRICKY[:50], "content": TRICKY, "status": TRICKY}]
    await store.add_message(session.id, role="assistant", content=TRICKY, tool_calls=calls, tool_results=results)
    checkpoint = await store.save_checkpoint(
        session_id=session.id, namespace=TRICKY[:200], step=0, source="loop", node_id=TRICKY[:200],
        node_results={TRICKY: {"status": "failed", "error": TRICKY, "output": {TRICKY: [TRICKY]}}},
        pending_nodes=[TRICKY], cycle_state={"back_edge": TRICKY, "iteration": 2},
    )  # fmt: skip

    loaded_session = await store.get_session(session.id)
    assert loaded_session is not None
    assert (loaded_session.directory, loaded_session.title, loaded_session.metadata) == (TRICKY, TRICKY, metadata)
    assert loaded_session.workspace_id == workspace + TRICKY[:40]
    assert [s.id for s in await store.list_sessions(workspace + TRICKY[:40])] == [session.id]
    (message,) = await store.get_messages(session.id)
    assert message.content == TRICKY
    assert message.model_dump(by_alias=True)["toolCalls"] == [
        {"toolUseId": TRICKY[:50], "name": TRICKY, "input": {TRICKY: TRICKY}}
    ]
    assert message.tool_results is not None
    assert message.tool_results[0].status == TRICKY
    loaded = await store.get_checkpoint(checkpoint.id)
    assert loaded == checkpoint
    assert (await store.list_checkpoints(session.id, namespace=TRICKY[:200])) == [checkpoint]
    assert (await store.get_latest_checkpoint(session.id, TRICKY[:200])) == checkpoint
    # A namespace differing only in case or a trailing space is another namespace everywhere.
    assert await store.get_latest_checkpoint(session.id, TRICKY[:200] + " ") is None


# 10 MB through every driver, but not through both faces of the in-memory and file
# SQLite backends, which share one: each round trip of 10 MB costs about a second.
@pytest.mark.parametrize(
    ("backend", "face"),
    [
        ("sqlite-file", "sync"),
        ("postgresql", "async"),
        ("postgresql", "sync"),
        ("mariadb", "async"),
        ("mariadb", "sync"),
    ],
    indirect=True,
)
async def test_payloads_over_10_mb_round_trip_exactly(store: Any, workspace: str) -> None:
    # Just over 10 MB, with 4-byte characters: MariaDB's default packet limit is 16 MB.
    big = ("0123456789abcdef" * 626_000) + "🧪" * 1000 + "'\\\"%_\x00"
    assert len(big.encode()) > 10_000_000
    session = await store.create_session("/big", workspace_id=workspace)
    message = await store.add_message(session.id, role="tool", content=big.replace("\x00", ""))
    checkpoint = await store.save_checkpoint(
        session_id=session.id, step=1, source="loop", node_results={"a": {"status": "completed", "output": big}}
    )

    assert [m.content for m in await store.get_messages(session.id)] == [big.replace("\x00", "")]
    loaded = await store.get_checkpoint(checkpoint.id)
    assert loaded is not None
    assert loaded.node_results["a"].output == big
    forked = await store.fork(checkpoint.id)
    assert [m.content for m in await store.get_messages(forked.id)] == [message.content]
    # 30 MB a run is worth giving back in a shared server database.
    for session_id in (session.id, forked.id):
        await store.delete_session(session_id)
    assert await store.get_session(session.id) is None


NUL_TEXT = "before\x00after"
EMPTY_CHECKPOINT: dict[str, Any] = {"step": 0, "node_results": {}, "source": "input"}


async def test_nul_in_json_payloads_round_trips_on_every_dialect(store: Any, workspace: str) -> None:
    metadata = {NUL_TEXT: NUL_TEXT}
    session = await store.create_session("/nul", workspace_id=workspace, metadata=metadata)
    calls = [{"tool_use_id": "t\x001", "name": "n", "input": {"q": NUL_TEXT}}]
    await store.add_message(session.id, role="assistant", tool_calls=calls)
    checkpoint = await store.save_checkpoint(
        session_id=session.id, step=0, source="input", pending_nodes=[NUL_TEXT],
        node_results={NUL_TEXT: {"status": "completed", "output": NUL_TEXT}},
    )  # fmt: skip

    loaded_session = await store.get_session(session.id)
    assert loaded_session is not None
    assert loaded_session.metadata == metadata
    (message,) = await store.get_messages(session.id)
    assert message.tool_calls is not None
    assert message.tool_calls[0].input == {"q": NUL_TEXT}
    assert message.tool_calls[0].tool_use_id == "t\x001"
    assert await store.get_checkpoint(checkpoint.id) == checkpoint


async def test_nul_in_text_columns_round_trips_or_is_refused_cleanly(store: Any, workspace: str, backend: str) -> None:
    session = await store.create_session("/nul", workspace_id=workspace)
    before = await snapshot(store, session.id, workspace)
    writes = {
        "content": lambda: store.add_message(session.id, role="user", content=NUL_TEXT),
        "title": lambda: store.update_session(session.id, title=NUL_TEXT),
        "directory": lambda: store.create_session(NUL_TEXT, workspace_id=workspace),
        "namespace": lambda: store.save_checkpoint(session_id=session.id, namespace=NUL_TEXT, **EMPTY_CHECKPOINT),
        "node_id": lambda: store.save_checkpoint(session_id=session.id, node_id=NUL_TEXT, **EMPTY_CHECKPOINT),
    }
    if backend.startswith("postgresql"):
        for field, write in writes.items():
            with pytest.raises(ValueError, match=rf"^{field}: PostgreSQL cannot store the NUL character"):
                await write()
        assert await snapshot(store, session.id, workspace) == before
        return

    for write in writes.values():
        await write()
    (message,) = await store.get_messages(session.id)
    assert message.content == NUL_TEXT
    loaded = await store.get_session(session.id)
    assert loaded is not None
    assert loaded.title == NUL_TEXT
    assert {s.directory for s in await store.list_sessions(workspace)} == {"/nul", NUL_TEXT}
    assert (await store.list_checkpoints(session.id, namespace=NUL_TEXT))[0].namespace == NUL_TEXT
    # NUL is part of the key, not a terminator: "before" alone is another namespace.
    assert await store.list_checkpoints(session.id, namespace="before") == []
    assert {c.node_id for c in await store.list_checkpoints(session.id)} == {None, NUL_TEXT}


async def test_ids_holding_nul_are_refused_by_postgresql_and_match_nothing_elsewhere(
    store: Any, workspace: str, backend: str
) -> None:
    session = await store.create_session("/nul-ids", workspace_id=workspace)
    await store.add_message(session.id, role="user", content="kept")
    await store.save_checkpoint(session_id=session.id, **EMPTY_CHECKPOINT)
    before = await snapshot(store, session.id, workspace)
    nul_id = "a\x00b"
    # What SQLite and MariaDB answer: no row has that id. PostgreSQL cannot even hold it.
    calls: dict[str, tuple[Any, Any]] = {
        "get_session": (lambda: store.get_session(nul_id), None),
        "get_checkpoint": (lambda: store.get_checkpoint(nul_id), None),
        "get_latest_checkpoint": (lambda: store.get_latest_checkpoint(nul_id), None),
        "list_sessions": (lambda: store.list_sessions(nul_id), []),
        "delete_session": (lambda: store.delete_session(nul_id), None),
        "list_checkpoints": (lambda: store.list_checkpoints(nul_id), SessionNotFoundError),
        "get_messages": (lambda: store.get_messages(nul_id), SessionNotFoundError),
        "update_session": (lambda: store.update_session(nul_id, title="t"), SessionNotFoundError),
        "add_message": (lambda: store.add_message(nul_id, role="user", content="x"), SessionNotFoundError),
        "save_checkpoint": (lambda: store.save_checkpoint(session_id=nul_id, **EMPTY_CHECKPOINT), SessionNotFoundError),
        "fork": (lambda: store.fork(nul_id), CheckpointNotFoundError),
    }
    for name, (call, elsewhere) in calls.items():
        if backend.startswith("postgresql"):
            with pytest.raises(ValueError, match=r"^'a\\x00b': PostgreSQL cannot store the NUL character"):
                await call()
        elif isinstance(elsewhere, type):
            with pytest.raises(elsewhere):
                await call()
        else:
            assert await call() == elsewhere, name
    assert await snapshot(store, session.id, workspace) == before
