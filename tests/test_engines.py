"""URLs, drivers and engines: what the store accepts and what it builds from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from obsku_checkpoint_sqlite import DriverNotInstalledError, SqlAlchemyCheckpointStore, sync
from obsku_checkpoint_sqlite._engine import normalize_url
from tests.conftest import require_server


@pytest.mark.parametrize(
    ("url", "sync_driver", "async_driver"),
    [
        ("sqlite:///a.db", "sqlite+pysqlite", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg", "postgresql+psycopg"),
        ("mariadb://u@h/db", "mariadb+pymysql", "mariadb+aiomysql"),
        ("mysql://u@h/db", "mysql+pymysql", "mysql+aiomysql"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg", "postgresql+asyncpg"),
    ],
)
def test_plain_urls_get_a_driver_for_each_face(url: str, sync_driver: str, async_driver: str) -> None:
    assert normalize_url(url, for_async=False).drivername == sync_driver
    assert normalize_url(url, for_async=True).drivername == async_driver


def test_mysql_urls_default_to_utf8mb4() -> None:
    assert normalize_url("mariadb://u@h/db", for_async=False).query["charset"] == "utf8mb4"
    assert normalize_url("mariadb://u@h/db?charset=latin1", for_async=False).query["charset"] == "latin1"


def test_a_missing_driver_names_the_extra_to_install() -> None:
    with pytest.raises(DriverNotInstalledError, match=r'pip install "obsku-checkpoint-sqlite\[postgresql\]"'):
        sync.SqlAlchemyCheckpointStore("postgresql+pg8000://u@localhost/db")


async def test_async_store_accepts_a_url_object_and_a_caller_owned_engine(tmp_path: Path) -> None:
    url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    engine = create_async_engine(url)
    async with SqlAlchemyCheckpointStore(engine) as store:
        session = await store.create_session("/a")
        await store.add_message(session.id, role="user", content="over aiosqlite")
    # The store did not dispose the engine it was handed.
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT content FROM messages"))).scalar_one() == "over aiosqlite"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    await engine.dispose()


def test_sync_store_accepts_a_caller_owned_engine(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    with sync.SqlAlchemyCheckpointStore(engine) as store:
        store.create_session("/a")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    engine.dispose()


def test_faces_refuse_the_other_kind_of_engine(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="AsyncEngine"):
        SqlAlchemyCheckpointStore(create_engine("sqlite://"))
    with pytest.raises(TypeError, match="synchronous Engine"):
        sync.SqlAlchemyCheckpointStore(create_async_engine("sqlite+aiosqlite://"))


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_async_store_accepts_an_explicit_driver_url(backend: str) -> None:
    url = make_url(require_server(backend))
    explicit = url.set(drivername="postgresql+asyncpg" if backend == "postgresql" else "mariadb+asyncmy")
    async with SqlAlchemyCheckpointStore(explicit) as store:
        session = await store.create_session("/explicit")
        saved = await store.save_checkpoint(session_id=session.id, step=1, node_results={}, source="input")
        assert (await store.get_latest_checkpoint(session.id)) == saved
