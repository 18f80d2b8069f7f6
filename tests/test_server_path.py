"""The server path: round trips per operation, no liveness ping, and what a lost connection does to a write.

Every connection of the store goes through a TCP proxy on loopback that counts round
trips (a flight of bytes from the client that follows a reply) and can cut a
connection at a chosen round trip, before or after the server gets it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import make_url

from obsku_checkpoint_sqlite import DatabaseUnavailableError, sync
from tests._proxy import RoundTripProxy
from tests.conftest import StoreFactory
from tests.test_reliability import kill_connections

NODE_RESULTS = {f"node_{index}": {"status": "completed", "output": "x" * 200} for index in range(20)}

# Round trips per call. A read is one statement outside a transaction. On PostgreSQL a
# write sends BEGIN, its statements and COMMIT in one pipeline; on MariaDB (PyMySQL has no
# pipeline) one per statement and one for COMMIT, as the raw driver takes. No PING or
# ROLLBACK around them.
ROUND_TRIPS = {
    "postgresql": {"get_session": 1, "latest": 1, "list10": 1, "last50": 1, "save": 1, "add": 1},
    "mariadb": {"get_session": 1, "latest": 1, "list10": 1, "last50": 1, "save": 3, "add": 3},
}
PROTOCOLS = {"postgresql": "postgresql", "mariadb": "mysql"}
DEFAULT_PORTS = {"postgresql": 5432, "mariadb": 3306}
SET_UP = {"postgresql": 1, "mariadb": 4}


@pytest.fixture
async def proxied(scratch_url: str) -> AsyncIterator[tuple[str, RoundTripProxy, str]]:
    """The scratch database's URL through a counting proxy, the proxy, and the direct URL."""
    url = make_url(scratch_url)
    backend = url.get_backend_name()
    proxy = RoundTripProxy(url.host or "127.0.0.1", url.port or DEFAULT_PORTS[backend], PROTOCOLS[backend])
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy, scratch_url
    proxy.close()


async def hot_calls(store: Any, session_id: str) -> dict[str, Any]:
    return {
        "save": lambda: store.save_checkpoint(session_id=session_id, step=1, node_results=NODE_RESULTS, source="loop"),
        "add": lambda: store.add_message(session_id, role="user", content="hello"),
        "latest": lambda: store.get_latest_checkpoint(session_id),
        "list10": lambda: store.list_checkpoints(session_id, limit=10),
        "last50": lambda: store.get_messages(session_id, limit=50),
        "get_session": lambda: store.get_session(session_id),
    }


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
async def test_each_hot_operation_takes_the_fewest_round_trips(
    open_store: StoreFactory, proxied: tuple[str, RoundTripProxy, str]
) -> None:
    url, proxy, _ = proxied
    backend = make_url(url).get_backend_name()
    store = open_store(url)
    session = await store.create_session("/round-trips")
    calls = await hot_calls(store, session.id)
    for call in calls.values():  # warm: the pool holds a connection, the statements are known
        await call()
    counted = {}
    for name, call in calls.items():
        with proxy.counting() as made:
            await call()
        counted[name] = made[0]
    assert counted == ROUND_TRIPS[backend]


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
async def test_a_connection_killed_between_calls_is_replaced_without_a_ping(
    open_store: StoreFactory, proxied: tuple[str, RoundTripProxy, str]
) -> None:
    url, proxy, direct = proxied
    backend = make_url(url).get_backend_name()
    store = open_store(url)
    session = await store.create_session("/killed")
    await store.add_message(session.id, role="user", content="before")
    for round_ in range(2):
        assert kill_connections(direct) >= 1, "the store keeps a pooled connection to kill"
        proxy.wait_until_all_closed()
        # The checkout sees the closed socket and connects anew: the call then takes its
        # own round trips and the new connection's set-up (the session settings the
        # driver and SQLAlchemy send), and no ping.
        with proxy.counting() as made:
            await store.add_message(session.id, role="user", content=f"after kill {round_}")
        assert 0 <= made[0] - ROUND_TRIPS[backend]["add"] <= SET_UP[backend], f"{made[0]} round trips"
        assert kill_connections(direct) >= 1
        proxy.wait_until_all_closed()
        assert len(await store.get_messages(session.id)) == round_ + 2
    # And with the pool's connection alive (and its first write done: on MariaDB that
    # reads the server's packet limit, once per connection), no round trip checks it first.
    await store.add_message(session.id, role="user", content="first write on this connection")
    with proxy.counting() as made:
        await store.add_message(session.id, role="user", content="alive")
    assert made == [ROUND_TRIPS[backend]["add"]]


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
async def test_a_read_cut_off_is_run_again_once(
    open_store: StoreFactory, proxied: tuple[str, RoundTripProxy, str]
) -> None:
    url, proxy, _ = proxied
    store = open_store(url)
    session = await store.create_session("/cut-read")
    await store.get_session(session.id)
    proxy.cut(1, deliver=False)
    assert await store.get_session(session.id) == session
    proxy.cut(1, deliver=True)  # the server answers; the store never hears it
    assert await store.get_session(session.id) == session


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
async def test_a_write_cut_off_before_its_commit_reaches_the_server_is_not_applied(
    open_store: StoreFactory, proxied: tuple[str, RoundTripProxy, str]
) -> None:
    url, proxy, _ = proxied
    backend = make_url(url).get_backend_name()
    store = open_store(url)
    session = await store.create_session("/cut-before")
    await store.add_message(session.id, role="user", content="warm")
    proxy.cut(1, deliver=False)  # the write's first request never reaches the server
    if backend == "mariadb":
        # The transaction went with the connection before COMMIT was sent: run again, once.
        await store.add_message(session.id, role="user", content="once")
        assert [m.content for m in await store.get_messages(session.id)] == ["warm", "once"]
    else:
        # BEGIN, the statements and COMMIT travel together: the store cannot tell how far
        # they got, so it reports the write as unknown; it was not applied.
        with pytest.raises(DatabaseUnavailableError, match="may or may not have been applied"):
            await store.add_message(session.id, role="user", content="lost")
        assert [m.content for m in await store.get_messages(session.id)] == ["warm"]


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
async def test_a_write_cut_off_at_its_commit_is_reported_as_unknown_and_not_run_again(
    open_store: StoreFactory, proxied: tuple[str, RoundTripProxy, str]
) -> None:
    url, proxy, _ = proxied
    backend = make_url(url).get_backend_name()
    store = open_store(url)
    session = await store.create_session("/cut-at-commit")
    await store.add_message(session.id, role="user", content="warm")
    # The COMMIT reaches the server, and the reply never reaches the store.
    proxy.cut(ROUND_TRIPS[backend]["add"], deliver=True)
    with pytest.raises(DatabaseUnavailableError, match="may or may not have been applied"):
        await store.add_message(session.id, role="user", content="committed, unacknowledged")
    # The server may still be finishing the COMMIT the cut connection delivered: wait for
    # it, then find the write applied once, not run again.
    expected = ["warm", "committed, unacknowledged"]
    deadline = time.monotonic() + 10
    while (contents := [m.content for m in await store.get_messages(session.id)]) != expected:
        assert contents == ["warm"]
        assert time.monotonic() < deadline, "the delivered COMMIT never became visible"
        await asyncio.sleep(0.05)


# put_writes of a task's ordinary writes: on PostgreSQL one pipeline (BEGIN, an INSERT a
# write, COMMIT), as LangGraph's PostgresSaver sends them; on MariaDB a check that the
# thread exists, an INSERT a write and COMMIT.
PUT_WRITES_ROUND_TRIPS = {"postgresql": 1, "mariadb": 1 + 4 + 1}


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
def test_langgraph_put_writes_takes_the_fewest_round_trips(proxied: tuple[str, RoundTripProxy, str]) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    from obsku_checkpoint_sqlite.langgraph import ObskuSaver

    url, proxy, _ = proxied
    backend = make_url(url).get_backend_name()
    with ObskuSaver.from_conn_string(url) as saver:
        config = {"configurable": {"thread_id": "t-round-trips", "checkpoint_ns": ""}}
        saved = saver.put(config, empty_checkpoint(), {"source": "loop", "step": 0}, {})
        writes = [(f"channel_{index}", index) for index in range(4)]
        for task in range(3):  # warm: the pool holds a connection, the statements are prepared
            saver.put_writes(saved, writes, f"warm-{task}")
        with proxy.counting() as made:
            saver.put_writes(saved, writes, "counted")
        assert made == [PUT_WRITES_ROUND_TRIPS[backend]]
        found = saver.get_tuple(saved)
        assert found is not None
        assert [(task, channel, value) for task, channel, value in found.pending_writes if task == "counted"] == [
            ("counted", channel, value) for channel, value in writes
        ]


@pytest.mark.parametrize("scratch_url", ["postgresql", "mariadb"], indirect=True)
def test_langgraph_put_writes_for_a_thread_not_saved_yet_creates_it(scratch_url: str) -> None:
    from obsku_checkpoint_sqlite.langgraph import ObskuSaver

    with ObskuSaver.from_conn_string(scratch_url) as saver:
        saver.setup()
        for task in range(2):  # the second on a connection whose first attempt failed its foreign key
            config = {"configurable": {"thread_id": f"t-new-{task}", "checkpoint_ns": "", "checkpoint_id": "c1"}}
            saver.put_writes(config, [("x", task)], f"task-{task}")
    store = sync.SqlAlchemyCheckpointStore(scratch_url)
    try:
        for task in range(2):
            session = store.get_session(f"t-new-{task}")
            assert session is not None
            assert session.directory == "langgraph"
    finally:
        store.close()
