"""The bounds checked before the database follow the schema: every key's length, every integer's width."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import BigInteger, Integer, Table

from obsku_checkpoint_sqlite import bounds
from obsku_checkpoint_sqlite.db import models
from obsku_checkpoint_sqlite.db.queries import checkpoints, messages, sessions
from obsku_checkpoint_sqlite.db.types import Key
from obsku_checkpoint_sqlite.ops import import_rows

VALID_ROWS: dict[str, tuple[Table, dict[str, Any]]] = {
    "session": (
        sessions,
        {
            "id": "s", "workspace_id": None, "title": None, "directory": "/d", "created_at": 1, "updated_at": 1,
            "metadata": None, "forked_from_session_id": None, "forked_from_checkpoint_id": None,
        },
    ),
    "message": (
        messages,
        {
            "id": 1, "session_id": "s", "role": "user", "content": "c", "tool_calls": None, "tool_results": None,
            "tokens_in": 1, "tokens_out": 1, "created_at": 1,
        },
    ),
    "checkpoint": (
        checkpoints,
        {
            "id": "c", "session_id": "s", "namespace": "", "parent_id": None, "version": 1, "step": 0,
            "node_id": "n", "node_results": "{}", "pending_nodes": "[]", "cycle_state": None, "source": "loop",
            "created_at": 1, "last_message_id": 1,
        },
    ),
}  # fmt: skip


def test_the_lengths_are_the_schemas() -> None:
    assert (bounds.ID_LENGTH, bounds.NAME_LENGTH) == (models.ID_LENGTH, models.NAME_LENGTH)


@pytest.mark.parametrize("kind", VALID_ROWS)
def test_imported_rows_are_bounded_as_each_column_of_their_table(kind: str) -> None:
    table, valid = VALID_ROWS[kind]
    adapter = import_rows._ADAPTERS[kind]
    adapter.validate_python(valid)
    assert set(valid) == {column.name for column in table.columns}
    for column in table.columns:
        column_type = column.type
        if isinstance(column_type, Key):
            too_long = {**valid, column.name: "k" * (column_type.length + 1)}
            with pytest.raises(ValidationError, match=column.name):
                adapter.validate_python(too_long)
            if column.name not in ("role", "source"):  # those hold one of a few words
                adapter.validate_python({**valid, column.name: "k" * column_type.length})
        elif isinstance(column_type, (Integer, BigInteger)):
            # SQLite's variant is INTEGER; the servers' type is the one that bounds.
            bits = 64 if isinstance(column_type.dialect_impl(_postgresql()), BigInteger) else 32
            with pytest.raises(ValidationError, match=column.name):
                adapter.validate_python({**valid, column.name: 2 ** (bits - 1)})
        if isinstance(valid[column.name], str):
            with pytest.raises(ValidationError, match=column.name):
                adapter.validate_python({**valid, column.name: valid[column.name].encode()})


def _postgresql() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def test_argument_checks() -> None:
    bounds.check_count("limit", 2**63 - 1)
    with pytest.raises(ValueError, match=r"^limit: must be at most"):
        bounds.check_count("limit", 2**63)
    with pytest.raises(ValueError, match=r"^batch_size: must be at least 1"):
        bounds.check_count("batch_size", 0, minimum=1)
    with pytest.raises(TypeError, match=r"^limit: expected an int"):
        bounds.check_count("limit", True)
    bounds.check_millis("before", -(2**63))
    with pytest.raises(ValueError, match=r"^before: must be a 64-bit"):
        bounds.check_millis("before", -(2**63) - 1)
    bounds.check_text("session_id", "i" * 128, max_length=128)
    with pytest.raises(ValueError, match=r"^session_id: at most 128 characters, got 129"):
        bounds.check_text("session_id", "i" * 129, max_length=128)
    with pytest.raises(TypeError, match=r"^session_id: expected a str, got bytes"):
        bounds.check_text("session_id", b"id")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^namespace: not valid Unicode"):
        bounds.check_text("namespace", "\ud800", optional=True)
