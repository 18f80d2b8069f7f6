"""A writer process for the multi-process tests (test_concurrency.py, test_crash.py).

Run as a script. It opens a store on the URL (so several of them race to build the
schema of a new database), creates a session of its own and prints ``S <id>``, then
waits for the start file, which lists the sessions to write to: every writer starts
at once, on the same sessions. Each write is acknowledged on stdout only after its
call has returned:

    M <message id> <session id>
    C <checkpoint id> <session id> <namespace> <version>

so a test that kills the process knows exactly which writes the store promised.
``--rounds 0`` writes until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from pathlib import Path
from typing import Any

from obsku_checkpoint_sqlite import SqlAlchemyCheckpointStore, sync

NAMESPACES = ("", "sub")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("start_file", type=Path)
    parser.add_argument("--name", default="writer")
    parser.add_argument("--face", choices=["async", "sync"], default="sync")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--checkpoint-every", type=int, default=2)
    parser.add_argument("--payload-bytes", type=int, default=64)
    return parser.parse_args()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_sessions(start_file: Path) -> list[str]:
    deadline = time.monotonic() + 60
    while not start_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no start file {start_file}")
        time.sleep(0.005)
    return start_file.read_text().split()


async def write(store: Any, options: argparse.Namespace) -> None:
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


async def main() -> None:
    options = arguments()
    if options.face == "async":
        async with SqlAlchemyCheckpointStore(options.url) as store:
            await write(store, options)
    else:
        with sync.SqlAlchemyCheckpointStore(options.url) as blocking:
            await write(Awaitable(blocking), options)
    say("DONE")


if __name__ == "__main__":
    asyncio.run(main())
