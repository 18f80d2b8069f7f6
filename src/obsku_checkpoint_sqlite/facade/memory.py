"""The async store's memory methods: entities, facts and semantic search over them.

Written by hand; ``memory_sync.py`` is generated from it by ``unasyncd`` (``pyproject.toml``).
``store.SqlAlchemyCheckpointStore`` has these methods from ``AsyncMemoryMethods``, and
``sync.SqlAlchemyCheckpointStore`` from the generated ``MemoryMethods``.
"""

from __future__ import annotations

from typing import Any

from obsku_checkpoint_sqlite.runtime.async_runners import AsyncRunner

from ..bounds import ID_LENGTH, NAME_LENGTH, check_count, check_text
from ..dto import UNSET, Unset
from ..memory_dto import (
    EmbeddingInput,
    Entity,
    EntityChanges,
    EntityRelationship,
    Fact,
    MemoryResults,
    NewEntity,
    NewFact,
    check_query,
    check_score,
)
from ..ops import memory, memory_search


class AsyncMemoryMethods:
    """The memory store: entities and facts with embeddings, and semantic search over them."""

    _runner: AsyncRunner

    @property
    def has_semantic_search(self) -> bool:
        """True: ``search_entities_semantic`` and ``search_facts_semantic`` work on every backend."""
        return True

    async def save_entity(
        self,
        session_id: str,
        *,
        name: str,
        type: str,
        attributes: dict[str, Any] | None = None,
        relationships: list[EntityRelationship] | list[dict[str, Any]] | None = None,
        embedding: EmbeddingInput | None = None,
        workspace_id: str | None = None,
    ) -> Entity:
        """Save an entity found in a session; returns it as ``get_entity`` will.

        ``attributes`` and ``relationships`` left out are stored as NULL and read back as
        ``{}`` and ``[]``, as the TypeScript package does. ``embedding`` is a list of
        numbers (``numpy.float64`` items too) or a 1-D numpy array of a real dtype; it is
        stored as the Python floats its numbers equal (a float32 widens exactly), so an
        array stores what a list of those floats stores.

        Raises:
            SessionNotFoundError: no such session; nothing is written.
            TypeError: an embedding that is not numbers (a bool, a string, None...).
            ValueError: invalid input (an embedding that is empty or holds NaN or an
                infinity, attributes the serializer cannot encode...); nothing is written.
        """
        new = NewEntity(
            session_id=session_id,
            name=name,
            type=type,
            attributes=attributes,
            relationships=relationships,
            embedding=embedding,
            workspace_id=workspace_id,
        )
        return await self._runner.run(memory.save_entity, new, write=True)

    async def get_entity(self, entity_id: str) -> Entity | None:
        """The entity with this id, or None.

        Raises:
            CheckpointCorruptionError: its attributes or relationships cannot be read.
        """
        check_text("entity_id", entity_id, max_length=ID_LENGTH)
        return await self._runner.run(memory.get_entity, entity_id, write=False)

    async def list_entities(
        self,
        *,
        session_id: str | None = None,
        workspace_id: str | None = None,
        type: str | None = None,
        limit: int | None = None,
    ) -> MemoryResults[Entity]:
        """Entities, newest first, filtered by each of ``session_id``, ``workspace_id`` and
        ``type`` given (None or ``""``: no filter, as in the TypeScript package).

        ``limit`` None or 0 means no limit. An entity that cannot be read is not in the
        list but in its ``skipped`` attribute, the error naming its row.

        Raises:
            ValueError: a negative ``limit``.
        """
        check_count("limit", limit)
        check_text("session_id", session_id, optional=True, max_length=ID_LENGTH)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        check_text("type", type, optional=True, max_length=NAME_LENGTH)
        return await self._runner.run(memory.list_entities, limit, session_id, workspace_id, type, write=False)

    async def update_entity(
        self,
        entity_id: str,
        *,
        name: str | Unset = UNSET,
        type: str | Unset = UNSET,
        workspace_id: str | Unset | None = UNSET,
        attributes: dict[str, Any] | Unset | None = UNSET,
        relationships: list[EntityRelationship] | list[dict[str, Any]] | Unset | None = UNSET,
        embedding: EmbeddingInput | Unset | None = UNSET,
    ) -> None:
        """Replace the fields passed and set ``updated_at``.

        None clears ``workspace_id``, ``attributes`` (read back as ``{}``),
        ``relationships`` (``[]``) or ``embedding`` (NULL: no embedding). An embedding is
        taken as by ``save_entity``.

        Raises:
            EntityNotFoundError: no such entity.
            TypeError: an embedding that is not numbers; nothing is written.
            ValueError: invalid input, e.g. ``name=None``; nothing is written.
        """
        check_text("entity_id", entity_id, max_length=ID_LENGTH)
        given = {
            "name": name, "type": type, "workspace_id": workspace_id, "attributes": attributes,
            "relationships": relationships, "embedding": embedding,
        }  # fmt: skip
        changes = {key: value for key, value in given.items() if value is not UNSET}
        for required in ("name", "type"):
            if required in changes and changes[required] is None:
                raise ValueError(f"{required}: an entity always has one, got None")
        validated = EntityChanges.model_validate(changes)
        await self._runner.run(memory.update_entity, entity_id, validated, write=True)

    async def delete_entity(self, entity_id: str) -> None:
        """Delete an entity. No error if it is absent; relationships pointing at it stay."""
        check_text("entity_id", entity_id, max_length=ID_LENGTH)
        await self._runner.run(memory.delete_entity, entity_id, write=True)

    async def save_fact(
        self,
        content: str,
        *,
        confidence: float | None = None,
        workspace_id: str | None = None,
        source_session_id: str | None = None,
        embedding: EmbeddingInput | None = None,
    ) -> Fact:
        """Save a fact; returns it as ``get_fact`` will (on PostgreSQL, the confidence in
        the column's 4-byte precision).

        A fact saved without ``confidence`` stores NULL, as the TypeScript package does.
        An embedding is taken as by ``save_entity``.

        Raises:
            SessionNotFoundError: ``source_session_id`` names no session; nothing is written.
            TypeError: an embedding that is not numbers; nothing is written.
            ValueError: invalid input (a NaN confidence, an empty embedding...); nothing is written.
        """
        new = NewFact(
            content=content,
            confidence=confidence,
            workspace_id=workspace_id,
            source_session_id=source_session_id,
            embedding=embedding,
        )
        return await self._runner.run(memory.save_fact, new, write=True)

    async def get_fact(self, fact_id: str) -> Fact | None:
        """The fact with this id, or None."""
        check_text("fact_id", fact_id, max_length=ID_LENGTH)
        return await self._runner.run(memory.get_fact, fact_id, write=False)

    async def list_facts(
        self,
        *,
        workspace_id: str | None = None,
        min_confidence: float | None = None,
        limit: int | None = None,
    ) -> list[Fact]:
        """Facts, newest first; with ``min_confidence``, only those with a confidence at
        least that (compared in the column's precision; a NULL confidence never passes).

        Raises:
            ValueError: a negative ``limit`` or a NaN ``min_confidence``.
        """
        check_count("limit", limit)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        bound = check_score("min_confidence", min_confidence)
        return await self._runner.run(memory.list_facts, limit, bound, workspace_id, write=False)

    async def delete_fact(self, fact_id: str) -> None:
        """Delete a fact. No error if it is absent."""
        check_text("fact_id", fact_id, max_length=ID_LENGTH)
        await self._runner.run(memory.delete_fact, fact_id, write=True)

    async def search_entities_semantic(
        self,
        embedding: EmbeddingInput,
        *,
        top_k: int = 10,
        threshold: float = 0.0,
        session_id: str | None = None,
        workspace_id: str | None = None,
    ) -> MemoryResults[Entity]:
        """The ``top_k`` entities most similar to ``embedding`` (cosine, at least ``threshold``).

        The query is taken as ``save_entity`` takes an embedding (a list of numbers or a
        1-D numpy array). The same entities in the same order with the same scores
        (``score``) as the TypeScript store. A row it cannot score is not in the list but
        in ``skipped``, the error naming the row: where the TypeScript store fails the
        whole search.

        Raises:
            TypeError: a query that is not numbers.
            ValueError: an empty query, or one with NaN or an infinity; a negative ``top_k``.
        """
        query = check_query(embedding)
        check_count("top_k", top_k)
        limit = check_score("threshold", threshold)
        check_text("session_id", session_id, optional=True, max_length=ID_LENGTH)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        return await self._runner.run(
            memory_search.search_entities, query, top_k, limit, session_id, workspace_id, write=False
        )

    async def search_facts_semantic(
        self,
        embedding: EmbeddingInput,
        *,
        top_k: int = 10,
        threshold: float = 0.0,
        session_id: str | None = None,
        workspace_id: str | None = None,
    ) -> MemoryResults[Fact]:
        """The ``top_k`` facts most similar to ``embedding``; as ``search_entities_semantic``.

        ``session_id`` is accepted and ignored, as by the TypeScript store: facts belong
        to a workspace, not a session.

        Raises:
            TypeError: as ``search_entities_semantic``.
            ValueError: as ``search_entities_semantic``.
        """
        query = check_query(embedding)
        check_count("top_k", top_k)
        limit = check_score("threshold", threshold)
        check_text("session_id", session_id, optional=True, max_length=ID_LENGTH)
        check_text("workspace_id", workspace_id, optional=True, max_length=NAME_LENGTH)
        return await self._runner.run(memory_search.search_facts, query, top_k, limit, workspace_id, write=False)
