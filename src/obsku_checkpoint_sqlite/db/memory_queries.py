"""Statements of the memory store: entities and facts, as the TypeScript package runs them.

Listings and search candidates filter as the TypeScript store does; candidates come
without ORDER BY, so equal scores keep the database's scan order, as there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import REAL, ColumnElement, Select, Table, bindparam, cast, literal_column, select

from .models import EntityRecord, FactRecord

entities: Table = EntityRecord.__table__  # type: ignore[assignment]
facts: Table = FactRecord.__table__  # type: ignore[assignment]

ENTITY_COLUMNS = (
    entities.c.id, entities.c.session_id, entities.c.workspace_id, entities.c.name, entities.c.type,
    entities.c.attributes, entities.c.relationships, entities.c.created_at, entities.c.updated_at,
    entities.c.embedding,
)  # fmt: skip
FACT_COLUMNS = (
    facts.c.id, facts.c.workspace_id, facts.c.content, facts.c.confidence, facts.c.source_session_id,
    facts.c.created_at, facts.c.embedding,
)  # fmt: skip

INSERT_ENTITY = entities.insert()
INSERT_FACT = facts.insert()
GET_ENTITY = select(*ENTITY_COLUMNS).where(entities.c.id == bindparam("id"))
GET_FACT = select(*FACT_COLUMNS).where(facts.c.id == bindparam("id"))
ENTITY_EXISTS = select(entities.c.id).where(entities.c.id == bindparam("id"))
DELETE_ENTITY = entities.delete().where(entities.c.id == bindparam("id"))
DELETE_FACT = facts.delete().where(facts.c.id == bindparam("id"))


def list_entities(session_id: str | None, workspace_id: str | None, type_: str | None) -> Select[tuple[object, ...]]:
    """Entities matching the filters given, newest first."""
    statement = select(*ENTITY_COLUMNS)
    filters = ((entities.c.session_id, session_id), (entities.c.workspace_id, workspace_id), (entities.c.type, type_))
    for column, value in filters:
        if value:
            statement = statement.where(column == value)
    return statement.order_by(entities.c.created_at.desc())


def confidence_at_least(minimum: float, dialect: str) -> ColumnElement[bool]:
    """``confidence >= minimum`` in the column's precision.

    PostgreSQL's ``real`` is a float4: the bound double is cast to ``real`` as the
    TypeScript store's untyped parameter is, so a fact stored with 0.95 passes 0.95.
    """
    bound: Any = cast(bindparam("min_confidence", minimum), REAL()) if dialect == "postgresql" else minimum
    condition: ColumnElement[bool] = facts.c.confidence >= bound
    return condition


def list_facts(workspace_id: str | None, min_confidence: float | None, dialect: str) -> Select[tuple[object, ...]]:
    """Facts matching the filters given, newest first."""
    statement = select(*FACT_COLUMNS)
    if workspace_id:
        statement = statement.where(facts.c.workspace_id == workspace_id)
    if min_confidence is not None:
        statement = statement.where(confidence_at_least(min_confidence, dialect))
    return statement.order_by(facts.c.created_at.desc())


def entity_candidates(
    session_id: str | None, workspace_id: str | None, dialect: str
) -> tuple[Select[tuple[object, ...]], bool]:
    """Ids and change markers of the entities a search scores, and whether the rows come
    with a leading SQLite rowid to be put in scan order by (see ``fact_candidates``)."""
    if dialect == "sqlite" and workspace_id and not session_id:
        indexed = select(literal_column("entities.rowid"), entities.c.id, entities.c.updated_at)
        return indexed.where(entities.c.workspace_id == workspace_id), True
    statement = select(entities.c.id, entities.c.updated_at).where(*_has_embedding(entities, dialect))
    if session_id:
        statement = statement.where(entities.c.session_id == session_id)
    if workspace_id:
        statement = statement.where(entities.c.workspace_id == workspace_id)
    return statement, False


def fact_candidates(workspace_id: str | None, dialect: str) -> tuple[Select[tuple[object, ...]], bool]:
    """Ids and change markers of the facts a search scores, in scan order.

    On SQLite, a workspace's candidates are read from ``idx_facts_search`` alone, with
    their rowids (the second value is True): the caller sorts them by rowid, the scan
    order of the TypeScript store's query. Rows without an embedding come too; the search
    skips them.
    """
    if dialect == "sqlite" and workspace_id:
        indexed = select(literal_column("facts.rowid"), facts.c.id, facts.c.created_at)
        return indexed.where(facts.c.workspace_id == workspace_id), True
    statement = select(facts.c.id, facts.c.created_at).where(*_has_embedding(facts, dialect))
    if workspace_id:
        statement = statement.where(facts.c.workspace_id == workspace_id)
    return statement, False


def _has_embedding(table: Table, dialect: str) -> tuple[Any, ...]:
    # InnoDB reads a LONGBLOB named in a condition, even to test it for NULL: on MariaDB
    # and MySQL every row is a candidate, and the search skips those with no embedding.
    if dialect in ("mysql", "mariadb"):
        return ()
    return (table.c.embedding.is_not(None),)
