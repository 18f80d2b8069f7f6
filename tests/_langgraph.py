"""For the LangGraph tests: a fresh database per backend, and graphs a child process can build too."""

from __future__ import annotations

import contextlib
import operator
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from sqlalchemy import create_engine, make_url, text

from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests.conftest import require_server

BACKENDS = ["sqlite-memory", "sqlite-file", "postgresql", "mariadb"]


@contextlib.contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on ``backend`` (servers: a scratch database, dropped after)."""
    if backend == "sqlite-memory":
        yield "sqlite://"
        return
    if backend == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'langgraph.db'}"
        return
    server = make_url(require_server(backend))
    name = f"obsku_lg_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(server, for_async=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name}" + (" WITH (FORCE)" if backend == "postgresql" else "")))
        admin.dispose()


class AskState(TypedDict, total=False):
    question: str
    answer: str
    log: Annotated[list[str], operator.add]


def interrupt_graph(checkpointer: Any) -> Any:
    """ask (stops at interrupt() until resumed with the answer) -> finish."""

    def ask(state: AskState) -> AskState:
        return {"answer": interrupt({"question": state["question"]}), "log": ["ask"]}

    def finish(state: AskState) -> AskState:
        return {"log": [f"finish:{state['answer']}"]}

    builder = StateGraph(AskState)
    builder.add_node("ask", ask)
    builder.add_node("finish", finish)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer)


RESUME_IN_CHILD = """
import asyncio, json, sys
from langgraph.types import Command
from obsku_checkpoint_sqlite.langgraph import AsyncObskuSaver, ObskuSaver
from tests._langgraph import interrupt_graph

url, face, thread_id = sys.argv[1:4]
config = {"configurable": {"thread_id": thread_id}}
if face == "sync":
    with ObskuSaver.from_conn_string(url) as saver:
        result = interrupt_graph(saver).invoke(Command(resume="42"), config)
else:
    async def main():
        async with AsyncObskuSaver.from_conn_string(url) as saver:
            return await interrupt_graph(saver).ainvoke(Command(resume="42"), config)
    result = asyncio.run(main())
print(json.dumps(result))
"""
