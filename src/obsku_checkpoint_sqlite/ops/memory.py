"""The memory store: entities and facts, saved, read, listed, updated and deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, update

from ..db import memory_queries as q
from ..db.memory_rows import encode_embedding, entity_from_row, fact_from_row
from ..db.queries import SESSION_EXISTS
from ..db.values import check_statement_size, encode_optional, new_id, now_ms, reject_unstorable_text
from ..errors import CheckpointCorruptionError, CheckpointStoreError, EntityNotFoundError, SessionNotFoundError
from ..memory_dto import Entity, EntityChanges, Fact, MemoryResults, NewEntity, NewFact


def _require_session(conn: Connection, session_id: str) -> None:
    if conn.execute(SESSION_EXISTS, {"session_id": session_id}).first() is None:
        raise SessionNotFoundError(session_id)


def _relationships_json(new: NewEntity | EntityChanges) -> str | None:
    if new.relationships is None:
        return None
    return encode_optional([link.model_dump(by_alias=True) for link in new.relationships], "relationships")


def save_entity(conn: Connection, new: NewEntity) -> Entity:
    _require_session(conn, new.session_id)
    now = now_ms()
    row: dict[str, Any] = {
        "id": new_id(),
        "session_id": new.session_id,
        "workspace_id": new.workspace_id,
        "name": new.name,
        "type": new.type,
        "attributes": encode_optional(new.attributes, "attributes"),
        "relationships": _relationships_json(new),
        "created_at": now,
        "updated_at": now,
        "embedding": encode_embedding(new.embedding),
    }
    reject_unstorable_text(conn, {key: row[key] for key in ("name", "type", "workspace_id")})
    check_statement_size(conn, row)
    conn.execute(q.INSERT_ENTITY, row)
    entity = get_entity(conn, row["id"])
    assert entity is not None
    return entity


def get_entity(conn: Connection, entity_id: str) -> Entity | None:
    row = conn.execute(q.GET_ENTITY, {"id": entity_id}).first()
    return None if row is None else entity_from_row(row)


def list_entities(
    conn: Connection, limit: int | None, session_id: str | None, workspace_id: str | None, type_: str | None
) -> MemoryResults[Entity]:
    statement = q.list_entities(session_id, workspace_id, type_)
    if limit:
        statement = statement.limit(limit)
    found: list[Entity] = []
    skipped: list[CheckpointStoreError] = []
    for row in conn.execute(statement):
        try:
            found.append(entity_from_row(row))
        except CheckpointCorruptionError as exc:
            skipped.append(exc)
    return MemoryResults(found, skipped=skipped)


def update_entity(conn: Connection, entity_id: str, changes: EntityChanges) -> None:
    if conn.execute(q.ENTITY_EXISTS, {"id": entity_id}).first() is None:
        raise EntityNotFoundError(entity_id)
    values: dict[str, Any] = {}
    for field in changes.model_fields_set:
        value = getattr(changes, field)
        if field == "attributes":
            value = encode_optional(value, "attributes")
        elif field == "relationships":
            value = _relationships_json(changes)
        elif field == "embedding":
            value = encode_embedding(value)
        values[field] = value
    reject_unstorable_text(conn, {key: values[key] for key in ("name", "type", "workspace_id") if key in values})
    check_statement_size(conn, values)
    # Now, or a millisecond past the previous value if that is not earlier: updated_at is
    # the change marker of the search cache, so every update moves it.
    now = now_ms()
    column = q.entities.c.updated_at
    values["updated_at"] = case((column >= now, column + 1), else_=now)
    conn.execute(update(q.entities).where(q.entities.c.id == entity_id).values(values))


def delete_entity(conn: Connection, entity_id: str) -> None:
    conn.execute(q.DELETE_ENTITY, {"id": entity_id})


def save_fact(conn: Connection, new: NewFact) -> Fact:
    if new.source_session_id is not None:
        _require_session(conn, new.source_session_id)
    row: dict[str, Any] = {
        "id": new_id(),
        "workspace_id": new.workspace_id,
        "content": new.content,
        "confidence": new.confidence,
        "source_session_id": new.source_session_id,
        "created_at": now_ms(),
        "embedding": encode_embedding(new.embedding),
    }
    reject_unstorable_text(conn, {key: row[key] for key in ("content", "workspace_id")})
    check_statement_size(conn, row)
    conn.execute(q.INSERT_FACT, row)
    fact = get_fact(conn, row["id"])
    assert fact is not None
    return fact


def get_fact(conn: Connection, fact_id: str) -> Fact | None:
    row = conn.execute(q.GET_FACT, {"id": fact_id}).first()
    return None if row is None else fact_from_row(row, postgresql=conn.dialect.name == "postgresql")


def list_facts(
    conn: Connection, limit: int | None, min_confidence: float | None, workspace_id: str | None
) -> list[Fact]:
    statement = q.list_facts(workspace_id, min_confidence, conn.dialect.name)
    if limit:
        statement = statement.limit(limit)
    postgresql = conn.dialect.name == "postgresql"
    return [fact_from_row(row, postgresql=postgresql) for row in conn.execute(statement)]


def delete_fact(conn: Connection, fact_id: str) -> None:
    conn.execute(q.DELETE_FACT, {"id": fact_id})
