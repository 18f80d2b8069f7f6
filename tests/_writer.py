"""What a writer process does, for the multi-process tests (test_concurrency.py, test_crash.py).

It opens a store on the URL (so several writers race to build the schema of a new
database), creates a session of its own and acknowledges it with ``S <id>``, then waits
for the start file, which lists the sessions to write to: every writer starts at once,
on the same sessions. Each write is acknowledged only after its call has returned:

    M <message id> <session id>
    C <checkpoint id> <session id> <namespace or -> <version>
    DONE

so a test that kills the process knows exactly which writes the store promised.
``rounds=0`` writes until killed.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obsku_checkpoint_sqlite import SqlAlchemyCheckpointStore, sync

NAMESPACES = ("", "sub")


@dataclass
class Options:
    url: str
    start_file: Path
    name: str = "writer"
    face: str = "sync"
    rounds: int = 20
    checkpoint_every: int = 2
    payload_bytes: int = 64


def wait_for_sessions(start_file: Path) -> list[str]:
    deadline = time.monotonic() + 60
    while not start_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no start file {start_file}")
        time.sleep(0.002)
    return start_file.read_text().split()


async def write(store: Any, options: Options, say: Callable[[str], None]) -> None:
    """Drive ``store``; its methods are awaitable (the async face, or the sync one wrapped)."""
    own = await store.create_session(f"/{options.name}", title=options.name)
    say(f"S {own.id}")
    sessions = wait_for_sessions(options.start_file)
    payload = "x" * options.payload_bytes
    rounds = itertools.count() if options.rounds == 0 else range(options.rounds)
    for index in rounds:
        session_id = sessions[index % len(sessions)]
        message = await store.add_message(session_id, role="user", content=f"{options.name}:{index}:{payload}")
        say(f"M {message.id} {session_id}")
        if index % options.checkpoint_every == 0:
            namespace = NAMESPACES[(index // options.checkpoint_every) % len(NAMESPACES)]
            checkpoint = await store.save_checkpoint(
                session_id=session_id, namespace=namespace, step=index, source="loop",
                node_results={"node": {"status": "completed", "output": payload}},
            )  # fmt: skip
            say(f"C {checkpoint.id} {session_id} {namespace or '-'} {checkpoint.version}")


class Awaitable:
    """The sync store with awaitable methods, so one ``write`` drives both faces."""

    def __init__(self, store: sync.SqlAlchemyCheckpointStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


def run(options: Options, ack_fd: int) -> None:
    """The writer's whole life; acknowledgements go to ``ack_fd``, unbuffered."""

    def say(line: str) -> None:
        # One write(2) per line, well under PIPE_BUF: a kill cannot leave half a line.
        os.write(ack_fd, (line + "\n").encode())

    async def main() -> None:
        if options.face == "async":
            async with SqlAlchemyCheckpointStore(options.url) as store:
                await write(store, options, say)
        else:
            with sync.SqlAlchemyCheckpointStore(options.url) as blocking:
                await write(Awaitable(blocking), options, say)

    asyncio.run(main())
    say("DONE")
