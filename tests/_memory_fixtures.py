"""The TypeScript packages' memory fixtures (``/work/shared/fixtures``), loaded on each backend.

SQLite opens a copy of ``ts-memory.db``; PostgreSQL loads ``ts-postgres.sql`` (the dump of
a database made by ``@obsku/checkpoint-postgres``) into a scratch database with psql;
MariaDB, which no TypeScript package writes, gets the SQLite file's rows as they are
stored, in a scratch database of this store's schema.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from obsku_checkpoint_sqlite.db import migrate
from obsku_checkpoint_sqlite.db.memory_queries import entities, facts
from obsku_checkpoint_sqlite.db.queries import sessions
from obsku_checkpoint_sqlite.runtime.urls import normalize_url

FIXTURES = Path(os.environ.get("OBSKU_TS_FIXTURES", "/work/shared/fixtures"))


@cache
def expected(name: str) -> dict[str, Any]:
    """An ``.expected.json`` of the fixtures: what the TypeScript store returned."""
    return json.loads((FIXTURES / f"{name}.expected.json").read_text(encoding="utf-8"))


def python_value(value: Any) -> Any:
    """An expected file's canonical value as this store reads it (a Map with str keys is a dict)."""
    if isinstance(value, dict):
        if set(value) == {"$date"}:
            return datetime.fromisoformat(value["$date"].replace("Z", "+00:00"))
        if set(value) == {"$map"}:
            return {key: python_value(item) for key, item in value["$map"]}
        if set(value) == {"$set"}:
            return {python_value(item) for item in value["$set"]}
        if set(value) == {"$bytes_base64"}:
            return base64.b64decode(value["$bytes_base64"])
        return {key: python_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [python_value(item) for item in value]
    return value


def expected_item(item: dict[str, Any]) -> dict[str, Any]:
    """An expected entity or fact in the shape of ``model_dump(by_alias=True)`` without Nones.

    Embedding numbers become floats (JSON reads ``1e20`` written as an integer as an int),
    and times ints (TypeScript's PostgreSQL search items carry them as strings).
    """
    converted = python_value(item)
    if "embedding" in converted:
        converted["embedding"] = [float(number) for number in converted["embedding"]]
    for key in ("createdAt", "updatedAt"):
        if key in converted:
            converted[key] = int(converted[key])
    return {key: value for key, value in converted.items() if value is not None}


def dumped(model: Any, *exclude: str) -> dict[str, Any]:
    """A DTO as ``expected_item`` shapes the expected ones."""
    data = model.model_dump(by_alias=True, exclude=set(exclude) | {"score"})
    return {key: value for key, value in data.items() if value is not None}


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """An empty database of its own on the server, dropped afterwards."""
    server = make_url(server_url)
    name = f"obsku_memory_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(server, for_async=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            suffix = " WITH (FORCE)" if server.get_backend_name() == "postgresql" else ""
            conn.execute(text(f"DROP DATABASE {name}{suffix}"))
        admin.dispose()


def load_postgres_dump(url: str) -> None:
    """``ts-postgres.sql`` into the database at ``url``, by psql as the fixtures' README says."""
    target = make_url(url)
    environment = {**os.environ, "PGHOST": target.host or "127.0.0.1", "PGPORT": str(target.port or 5432)}
    environment["PGUSER"] = target.username or "postgres"
    if target.password:
        environment["PGPASSWORD"] = str(target.password)
    subprocess.run(
        ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", str(target.database), "-f", str(FIXTURES / "ts-postgres.sql")],
        check=True,
        env=environment,
        capture_output=True,
    )


def copy_sqlite_fixture(tmp_path: Path) -> Path:
    """A copy of ``ts-memory.db``: the original is never opened."""
    path = tmp_path / f"ts-memory-{uuid.uuid4().hex[:8]}.db"
    shutil.copy(FIXTURES / "ts-memory.db", path)
    return path


def load_sqlite_rows(url: str, tmp_path: Path) -> None:
    """The TypeScript file's sessions, entities and facts, as stored, into this store's schema
    at ``url`` (embeddings as the UTF-8 bytes of their text, as on PostgreSQL)."""
    source = sqlite3.connect(copy_sqlite_fixture(tmp_path))
    source.row_factory = sqlite3.Row
    engine = create_engine(normalize_url(url, for_async=False))
    try:
        with engine.begin() as conn:
            migrate.upgrade(conn)
            for table in (sessions, entities, facts):
                rows = [dict(row) for row in source.execute(f"SELECT * FROM {table.name} ORDER BY rowid")]
                for row in rows:
                    if isinstance(row.get("embedding"), str):
                        row["embedding"] = row["embedding"].encode()
                conn.execute(table.insert(), rows)
    finally:
        engine.dispose()
        source.close()
