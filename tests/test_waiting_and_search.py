"""How long a store waits for a lock, and what it says when it stops; searches that fold all of Unicode."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from obsku_checkpoint_sqlite import LockTimeoutError, SqlAlchemyCheckpointStore
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests.conftest import StoreFactory


@pytest.mark.parametrize("backend", ["sqlite-file", "mariadb"], indirect=True)
async def test_a_lock_held_past_lock_timeout_raises_saying_how_long_and_which_option(
    open_store: StoreFactory, url: str, backend: str
) -> None:
    options = (
        {"connect_args": {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"}} if backend == "mariadb" else {}
    )
    store = open_store(url, lock_timeout=1.5, **options)
    session = await store.create_session("/waiting")
    engine = create_engine(normalize_url(url, for_async=False))
    try:
        with engine.connect() as holder:
            if backend == "mariadb":
                holder.begin()
                holder.execute(text("SELECT id FROM sessions WHERE id = :id FOR UPDATE"), {"id": session.id})
            else:
                holder.exec_driver_sql("BEGIN IMMEDIATE")
            release = threading.Timer(6, holder.exec_driver_sql, ["COMMIT"])
            release.start()
            started = time.monotonic()
            with pytest.raises(LockTimeoutError, match=r"lock_timeout \(1\.5 s\)") as raised:
                await store.add_message(session.id, role="user", content="never written")
            waited = time.monotonic() - started
            release.cancel()
            holder.exec_driver_sql("COMMIT")
    finally:
        engine.dispose()
    assert 1.5 <= raised.value.waited <= waited < 5
    assert f"{raised.value.waited:.1f} s" in str(raised.value)
    assert await store.get_messages(session.id) == []


@pytest.mark.parametrize("lock_timeout", [0, -1, float("nan"), float("inf"), "30", True])
def test_lock_timeout_must_be_a_positive_number_of_seconds(lock_timeout: object) -> None:
    with pytest.raises((TypeError, ValueError), match="lock_timeout"):
        SqlAlchemyCheckpointStore("sqlite://", lock_timeout=lock_timeout)  # type: ignore[arg-type]


async def test_search_folds_case_across_unicode_on_every_backend(store: Any, workspace: str) -> None:
    titles = ("ÉCOLE d'été", "Über Straße", "plain ascii")
    for title in titles:
        await store.create_session("/projects", title=title, workspace_id=workspace)

    async def search(query: str) -> list[str]:
        return [session.title for session in await store.list_sessions(workspace, search=query)]

    assert await search("école") == await search("ÉCOLE") == await search("ÉtÉ") == ["ÉCOLE d'été"]
    assert await search("über") == await search("STRAßE") == ["Über Straße"]
    assert await search("ASCII") == ["plain ascii"]
