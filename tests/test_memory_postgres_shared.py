"""One PostgreSQL database shared with ``@obsku/checkpoint-postgres``, checked at the schema level.

A database this store builds has every table, column (with its type family, nullability and
default), foreign-key action, uniqueness and ``idx_*`` index the TypeScript package's
``setup()`` makes (``ts-postgres.expected.json``, the catalogue of such a database), so that
package runs on it unchanged; and a database made by that package is adopted (the dump, in
``tests/test_memory.py``, is read and written through the API).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from obsku_checkpoint_sqlite.db import migrate
from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import normalize_url
from tests._memory_fixtures import expected, load_postgres_dump, scratch_database
from tests.conftest import require_server

# Type families: the TypeScript package declares TEXT where this store bounds keys.
FAMILY = {
    "text": "text", "character varying": "text", "bigint": "bigint", "integer": "int", "real": "real", "bytea": "bytea"
}  # fmt: skip


def _catalogue(url: str) -> dict[str, Any]:
    engine = create_sync_engine(normalize_url(url, for_async=False))
    try:
        with engine.connect() as conn:
            columns = conn.execute(
                text(
                    "SELECT table_name, column_name, data_type, is_nullable, column_default"
                    " FROM information_schema.columns WHERE table_schema = 'public'"
                )
            ).all()
            indexes = conn.execute(
                text("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
            ).all()
            constraints = conn.execute(
                text(
                    "SELECT rel.relname, con.contype, pg_get_constraintdef(con.oid) FROM pg_constraint con"
                    " JOIN pg_class rel ON rel.oid = con.conrelid JOIN pg_namespace ns ON ns.oid = rel.relnamespace"
                    " WHERE ns.nspname = 'public'"
                )
            ).all()
    finally:
        engine.dispose()
    return {
        "columns": {(row[0], row[1]): row[2:] for row in columns},
        "indexes": {row[1]: (row[0], _columns_of(row[2])) for row in indexes},
        "unique": {(row[0], _columns_of(row[2])) for row in indexes if "UNIQUE" in row[2]},
        "foreign_keys": {(row[0], row[2].replace("public.", "")) for row in constraints if row[1] == "f"},
    }


def _columns_of(definition: str) -> str:
    return re.sub(r"\s+", "", definition[definition.rindex("(") + 1 : definition.rindex(")")])


def test_a_database_this_store_builds_has_what_the_typescript_postgres_package_expects() -> None:
    schema = expected("ts-postgres")["schema"]
    with scratch_database(require_server("postgresql")) as url:
        engine = create_sync_engine(normalize_url(url, for_async=False))
        with engine.begin() as conn:
            migrate.upgrade(conn)
        engine.dispose()
        ours = _catalogue(url)
    for column in schema["columns"]:
        key = (column["table_name"], column["column_name"])
        assert key in ours["columns"], key
        data_type, nullable, default = ours["columns"][key]
        family = FAMILY[column["data_type"]]
        # Widths: where the TypeScript schema has a 32-bit integer, this store's 64-bit one holds it.
        assert FAMILY[data_type] == family or (family == "int" and FAMILY[data_type] == "bigint"), key
        # Never stricter than the TypeScript schema, or its inserts would fail (checkpoints.source
        # is NOT NULL there and nullable here, as in the TypeScript SQLite schema; this store
        # always writes it).
        assert not (nullable == "NO" and column["is_nullable"] == "YES"), key
        if column["column_default"] is not None and not column["column_default"].startswith("nextval"):
            assert default is not None, key
            assert column["column_default"].split("::")[0] in default, key
    for index in schema["indexes"]:
        if index["indexname"].startswith("idx_"):
            assert ours["indexes"][index["indexname"]] == (index["tablename"], _columns_of(index["indexdef"]))
        elif "UNIQUE" in index["indexdef"]:
            assert (index["tablename"], _columns_of(index["indexdef"])) in ours["unique"], index["indexname"]
    for constraint in schema["constraints"]:
        if constraint["contype"] == "f":
            assert (constraint["table_name"], constraint["definition"]) in ours["foreign_keys"], constraint["conname"]


def test_a_database_the_typescript_postgres_package_made_is_adopted_by_additions_only() -> None:
    with scratch_database(require_server("postgresql")) as url:
        load_postgres_dump(url)
        before = _catalogue(url)
        engine = create_sync_engine(normalize_url(url, for_async=False))
        with engine.begin() as conn:
            migrate.upgrade(conn)
        with engine.begin() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
        engine.dispose()
        after = _catalogue(url)
    # Every column, index, uniqueness and foreign key kept as it was; only additions.
    for part in ("indexes", "foreign_keys", "unique"):
        kept = (
            {key: after[part][key] for key in before[part]}
            if isinstance(before[part], dict)
            else before[part] & after[part]
        )
        assert kept == before[part], part
    assert {key: after["columns"][key] for key in before["columns"]} == before["columns"]
    tables = {table for table, _ in before["columns"]}
    added = {key for key in after["columns"] if key not in before["columns"] and key[0] in tables}
    assert all(after["columns"][key][1] == "YES" for key in added), added
