"""Real LangGraph graphs on the savers, on every backend, through both faces.

A graph stops at ``interrupt()`` and is resumed with ``Command(resume=...)`` after its
saver is closed and reopened (in a new process, for a SQLite file); time travel through
``get_state_history`` and ``update_state``; a subgraph (checkpoints in a namespace of
their own); parallel branches whose pending writes survive a failed step.
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from obsku_checkpoint_sqlite import SqliteCheckpointStore, sync
from obsku_checkpoint_sqlite.langgraph import AsyncObskuSaver, ObskuSaver
from tests._langgraph import BACKENDS, RESUME_IN_CHILD, AskState, fresh_database, interrupt_graph

REPOSITORY = Path(__file__).resolve().parent.parent


class Face:
    """One test body for both savers: the blocking saver runs a graph's blocking methods,
    the async saver its async ones."""

    def __init__(self, kind: str, target: Any, url: str) -> None:
        self.kind = kind
        self.target = target
        self.url = url
        self.opened: list[Any] = []

    def open(self) -> Any:
        saver = ObskuSaver(self.target) if self.kind == "sync" else AsyncObskuSaver(self.target)
        self.opened.append(saver)
        return saver

    async def close(self, saver: Any) -> None:
        self.opened.remove(saver)
        if self.kind == "sync":
            saver.close()
        else:
            await saver.aclose()

    async def invoke(self, graph: Any, value: Any, config: Any) -> Any:
        return graph.invoke(value, config) if self.kind == "sync" else await graph.ainvoke(value, config)

    async def state(self, graph: Any, config: Any, **options: Any) -> Any:
        if self.kind == "sync":
            return graph.get_state(config, **options)
        return await graph.aget_state(config, **options)

    async def history(self, graph: Any, config: Any) -> list[Any]:
        if self.kind == "sync":
            return list(graph.get_state_history(config))
        return [snapshot async for snapshot in graph.aget_state_history(config)]

    async def update(self, graph: Any, config: Any, values: Any) -> Any:
        if self.kind == "sync":
            return graph.update_state(config, values)
        return await graph.aupdate_state(config, values)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["sync", "async"])
async def face(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> AsyncIterator[Face]:
    kind = str(request.param)
    with fresh_database(backend, tmp_path) as url:
        # A private in-memory database lives as long as its store: savers open on the store.
        store: Any = None
        if backend == "sqlite-memory":
            store = sync.SqliteCheckpointStore() if kind == "sync" else SqliteCheckpointStore()
        tested = Face(kind, store if store is not None else url, url)
        yield tested
        for saver in list(tested.opened):
            await tested.close(saver)
        if store is not None:
            await store.close() if kind == "async" else store.close()


def resume_in_child(url: str, kind: str, thread_id: str) -> Any:
    """Resume the interrupt graph's thread in a new process, and what the run returned."""
    child = subprocess.run(
        [sys.executable, "-c", RESUME_IN_CHILD, url, kind, thread_id],
        cwd=REPOSITORY, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )  # fmt: skip
    return json.loads(child.stdout.strip().splitlines()[-1])


def thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": f"thread-{uuid.uuid4()}"}}


async def test_an_interrupted_graph_resumes_after_the_saver_is_reopened(face: Face, backend: str) -> None:
    config = thread()
    saver = face.open()
    graph = interrupt_graph(saver)
    stopped = await face.invoke(graph, {"question": "the answer?", "log": []}, config)
    assert stopped["__interrupt__"][0].value == {"question": "the answer?"}
    assert (await face.state(graph, config)).next == ("ask",)
    await face.close(saver)

    if backend == "sqlite-file":
        # A new process, as after a restart: only the file carries the thread over.
        result = resume_in_child(face.url, face.kind, config["configurable"]["thread_id"])
    else:
        result = await face.invoke(interrupt_graph(face.open()), Command(resume="42"), config)
    assert result == {"question": "the answer?", "answer": "42", "log": ["ask", "finish:42"]}

    reopened = interrupt_graph(face.open())
    final = await face.state(reopened, config)
    assert final.next == ()
    assert final.values["log"] == ["ask", "finish:42"]


class Count(TypedDict, total=False):
    n: int
    trail: Annotated[list[str], operator.add]


def counting_graph(checkpointer: Any) -> Any:
    """a: n + 1, then b: n * 10, then c: n + 2."""
    steps: dict[str, Callable[[int], int]] = {"a": lambda n: n + 1, "b": lambda n: n * 10, "c": lambda n: n + 2}
    builder = StateGraph(Count)
    for name, step in steps.items():
        builder.add_node(name, lambda state, name=name, step=step: {"n": step(state["n"]), "trail": [name]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=checkpointer)


async def test_time_travel_replays_and_forks_from_an_earlier_checkpoint(face: Face) -> None:
    config = thread()
    graph = counting_graph(face.open())
    assert (await face.invoke(graph, {"n": 1, "trail": []}, config))["n"] == 22

    history = await face.history(graph, config)
    assert [snapshot.next for snapshot in history] == [(), ("c",), ("b",), ("a",), ("__start__",)]
    assert [snapshot.values.get("n") for snapshot in history] == [22, 20, 2, 1, None]
    before_b = history[2]

    # Replay: from the checkpoint before b, the same steps give the same result.
    assert (await face.invoke(graph, None, before_b.config))["n"] == 22

    # Fork: change n there, and run on from the new checkpoint.
    forked = await face.update(graph, before_b.config, {"n": 5})
    assert forked["configurable"]["checkpoint_id"] != before_b.config["configurable"]["checkpoint_id"]
    result = await face.invoke(graph, None, forked)
    assert result["n"] == 52
    assert result["trail"] == ["a", "b", "c"]

    latest = await face.state(graph, config)
    assert latest.values["n"] == 52
    everything = await face.history(graph, config)
    assert sorted(snapshot.values.get("n") for snapshot in everything if not snapshot.next) == [22, 22, 52]
    # The fork's parent is the checkpoint it was made from.
    fork_state = await face.state(graph, forked)
    assert fork_state.parent_config["configurable"]["checkpoint_id"] == before_b.config["configurable"]["checkpoint_id"]


class ChildState(TypedDict, total=False):
    question: str
    answer: str


def nested_graph(checkpointer: Any) -> Any:
    """prepare -> child (a subgraph that asks, stopping at interrupt()) -> report."""

    def child_ask(state: ChildState) -> ChildState:
        return {"answer": interrupt("child asks")}

    child = StateGraph(ChildState)
    child.add_node("child_ask", child_ask)
    child.add_edge(START, "child_ask")
    child.add_edge("child_ask", END)

    parent = StateGraph(AskState)
    parent.add_node("prepare", lambda state: {"log": ["prepare"]})
    parent.add_node("child", child.compile())
    parent.add_node("report", lambda state: {"log": [f"report:{state['answer']}"]})
    parent.add_edge(START, "prepare")
    parent.add_edge("prepare", "child")
    parent.add_edge("child", "report")
    parent.add_edge("report", END)
    return parent.compile(checkpointer=checkpointer)


async def test_a_subgraph_keeps_its_checkpoints_in_a_namespace_and_resumes(face: Face) -> None:
    config = thread()
    saver = face.open()
    graph = nested_graph(saver)
    await face.invoke(graph, {"question": "q", "log": []}, config)

    state = await face.state(graph, config, subgraphs=True)
    assert state.next == ("child",)
    child_state = state.tasks[0].state
    namespace = child_state.config["configurable"]["checkpoint_ns"]
    assert namespace.startswith("child:")
    assert child_state.next == ("child_ask",)
    in_namespace = {"configurable": {**config["configurable"], "checkpoint_ns": namespace}}
    if face.kind == "sync":
        child_checkpoints = list(saver.list(in_namespace))
    else:
        child_checkpoints = [item async for item in saver.alist(in_namespace)]
    assert child_checkpoints
    assert {item.config["configurable"]["checkpoint_ns"] for item in child_checkpoints} == {namespace}

    result = await face.invoke(nested_graph(face.open()), Command(resume="yes"), config)
    assert result["log"] == ["prepare", "report:yes"]
    assert result["answer"] == "yes"


class Fan(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


async def test_parallel_branches_keep_their_pending_writes_when_a_sibling_fails(face: Face) -> None:
    calls = {"b": 0, "c": 0}

    def branch(name: str) -> Callable[[Fan], Fan]:
        def run(state: Fan) -> Fan:
            calls[name] += 1
            if name == "c" and calls["c"] == 1:
                raise RuntimeError("c fails once")
            return {"items": [name]}

        return run

    builder = StateGraph(Fan)
    builder.add_node("b", branch("b"))
    builder.add_node("c", branch("c"))
    builder.add_node("join", lambda state: {"items": ["join"]})
    builder.add_edge(START, "b")
    builder.add_edge(START, "c")
    builder.add_edge(["b", "c"], "join")
    builder.add_edge("join", END)
    saver = face.open()
    graph = builder.compile(checkpointer=saver)
    config = thread()

    with pytest.raises(RuntimeError, match="c fails once"):
        await face.invoke(graph, {"items": []}, config)
    saved = saver.get_tuple(config) if face.kind == "sync" else await saver.aget_tuple(config)
    written = [(channel, value) for _, channel, value in saved.pending_writes]
    assert ("items", ["b"]) in written
    assert any(channel == "__error__" for channel, _ in written)

    # Resumed: b's write is taken from the saver, so only c runs again.
    result = await face.invoke(graph, None, config)
    assert sorted(result["items"][:2]) == ["b", "c"]
    assert result["items"][2:] == ["join"]
    assert calls == {"b": 1, "c": 2}
