"""End to end on the embedded default: a run that checkpoints, stops, resumes and forks.

python examples/quickstart.py                      # ./checkpoints.db
python examples/quickstart.py postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import asyncio
import sys

from obsku_checkpoint_sqlite import SqlAlchemyCheckpointStore


async def main(url: str) -> None:
    # First process: a run that does two steps, checkpointing after each.
    async with SqlAlchemyCheckpointStore(url) as store:
        session = await store.create_session("./my-project", title="Security Scan", workspace_id="demo")
        await store.add_message(session.id, role="user", content="Scan example.com")
        await store.add_message(
            session.id,
            role="assistant",
            tool_calls=[{"tool_use_id": "tu_1", "name": "nmap", "input": {"host": "example.com"}}],
            tokens_in=42,
            tokens_out=17,
        )
        first = await store.save_checkpoint(
            session_id=session.id,
            namespace="main",
            step=1,
            node_results={"plan": {"status": "completed", "output": ["nmap", "report"]}},
            pending_nodes=["scan"],
            source="loop",
        )
        await store.add_message(
            session.id, role="tool", tool_results=[{"tool_use_id": "tu_1", "content": "22/tcp open"}]
        )
        await store.save_checkpoint(
            session_id=session.id,
            namespace="main",
            step=2,
            node_results={
                "plan": {"status": "completed", "output": ["nmap", "report"]},
                "scan": {"status": "completed", "output": {"open_ports": [22]}},
            },
            pending_nodes=["report"],
            source="loop",
            parent_id=first.id,
        )
        print(f"saved session {session.id}")

    # Later, after a restart: reopen the database and resume from the latest checkpoint.
    async with SqlAlchemyCheckpointStore(url) as store:
        resumed = await store.get_session(session.id)
        assert resumed is not None
        latest = await store.get_latest_checkpoint(resumed.id, "main")
        assert latest is not None
        history = await store.get_messages(resumed.id)
        print(f"resuming {resumed.title!r} at step {latest.step} (version {latest.version}), "
              f"{len(history)} messages, next: {latest.pending_nodes}")  # fmt: skip

        # Branch from the first checkpoint to try another approach; the original is untouched.
        forked = await store.fork(first.id, title="Experiment: alternative approach")
        copied = await store.get_messages(forked.id)
        print(f"forked {forked.id} from step {first.step} with {len(copied)} messages")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///./checkpoints.db"))
