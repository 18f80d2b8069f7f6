"""What names a database: any URL the docs give, on either face and on the command line, or a plain path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from obsku_checkpoint_sqlite import SqlAlchemyCheckpointStore, sync
from obsku_checkpoint_sqlite.cli import app

from .test_cli import failed, ok, run

ASYNC_DRIVERS = [
    ("sqlite", "sqlite+aiosqlite"),
    ("postgresql", "postgresql+asyncpg"),
    ("postgresql", "postgresql+psycopg_async"),
    ("mariadb", "mysql+aiomysql"),
    ("mariadb", "mariadb+aiomysql"),
    ("mariadb", "mysql+asyncmy"),
    ("mariadb", "mariadb+asyncmy"),
]


@pytest.mark.parametrize(
    ("scratch_url", "driver"), ASYNC_DRIVERS, indirect=["scratch_url"], ids=[driver for _, driver in ASYNC_DRIVERS]
)
def test_an_async_driver_url_works_on_the_blocking_face_and_the_command_line(scratch_url: str, driver: str) -> None:
    url = make_url(scratch_url).set(drivername=driver).render_as_string(hide_password=False)

    with sync.SqlAlchemyCheckpointStore(url) as store:
        session = store.create_session("/async-url", title="through the blocking twin")
        assert [found.id for found in store.list_sessions()] == [session.id]

    listed = json.loads(ok(url, "sessions", "--json").stdout)
    assert [item["session"]["id"] for item in listed["sessions"]] == [session.id]
    assert "(head)" in ok(url, "db", "current").stdout
    from_environment = CliRunner().invoke(app, ["show", session.id], env={"OBSKU_CHECKPOINT_URL": url})
    assert from_environment.exit_code == 0, from_environment.output
    assert "through the blocking twin" in from_environment.stdout


def test_an_async_driver_without_a_blocking_twin_is_one_clear_error(tmp_path: Path) -> None:
    url = "oracle+oracledb_async://scott:tiger@db.internal/agents"
    with pytest.raises(ValueError, match="oracle\\+oracledb_async is an asyncio driver") as raised:
        sync.SqlAlchemyCheckpointStore(url)
    assert "tiger" not in str(raised.value)
    message = failed(run(url, "sessions"))
    assert message.startswith("error: oracle+oracledb_async is an asyncio driver, which the blocking store")


async def test_a_plain_path_names_a_sqlite_file_on_both_faces_and_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, target in [("a.db", "./a.db"), ("b.db", Path("b.db")), ("what? #1.db", "what? #1.db")]:
        async with SqlAlchemyCheckpointStore(target) as store:
            await store.create_session("/async", title=f"async {name}")
        with sync.SqlAlchemyCheckpointStore(target) as blocking:
            blocking.create_session("/sync", title=f"sync {name}")
            assert sorted(session.title or "" for session in blocking.list_sessions()) == [
                f"async {name}", f"sync {name}"
            ]  # fmt: skip
        assert (tmp_path / name).is_file()
        listed = json.loads(ok(str(target), "sessions", "--json").stdout)["sessions"]
        assert len(listed) == 2  # the command line opens the same file


def test_a_string_that_is_not_a_url_is_a_value_error_that_shows_no_password() -> None:
    for target, reason in [("post gres://me:hunter2@host/db", "not a database URL"), ("   ", "is empty")]:
        with pytest.raises(ValueError, match=reason) as raised:
            sync.SqlAlchemyCheckpointStore(target)
        assert "hunter2" not in str(raised.value)
    message = run("post gres://me:hunter2@host/db", "sessions").stderr
    assert message.startswith("error: Invalid value for '--db': post gres://...: not a database URL")
    assert "hunter2" not in message
