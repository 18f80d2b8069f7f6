"""Copy: every row of one database into another, empty one, checked by counting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select

from ..db.memory_queries import entities, facts
from ..db.queries import checkpoints, messages, sessions
from ..db.thread_queries import lg_checkpoints, lg_writes
from ..db.values import STATEMENT_ALLOWANCE, check_statement_size, statement_limit
from ..dto import TransferReport
from ..errors import CheckpointStoreError, ImportConflictError
from .export import read_one_snapshot
from .importing import advance_message_ids
from .jobs import Progress


def prepare_copy_target(target: Connection) -> None:
    """Bring the target to the head schema and refuse it unless it holds no sessions."""
    from ..db import migrate

    migrate.ensure_schema(target)


def copy_rows(source: Connection, target: Connection, batch_size: int, progress: Progress | None) -> TransferReport:
    """Copy every row from ``source`` into ``target``, an empty database at the head schema.

    The source is read in one snapshot; the target is written in its caller's transaction,
    in batches, and its row counts compared with the source's before that commits.
    """
    read_one_snapshot(source)
    existing = target.execute(select(func.count()).select_from(sessions)).scalar_one()
    if existing:
        raise ImportConflictError(
            f"The target database holds {existing} sessions already: copy needs an empty one. "
            "To merge into it, use export and import."
        )
    # A LangGraph thread is a session with rows in lg_checkpoints and lg_writes; the memory
    # store's entities and facts go whole, their embeddings' stored values as they are.
    tables = (sessions, messages, checkpoints, lg_checkpoints, lg_writes, entities, facts)
    totals = {table.name: source.execute(select(func.count()).select_from(table)).scalar_one() for table in tables}
    grand_total = sum(totals.values())
    done = 0
    for table in tables:
        primary_key = table.primary_key.columns.values()[0]
        result = source.execute(select(table).order_by(primary_key).execution_options(yield_per=batch_size))
        for partition in result.partitions():
            for batch in _in_statements(target, table, [dict(row._mapping) for row in partition]):
                target.execute(insert(table), batch)
            done += len(partition)
            if progress is not None:
                progress(done, grand_total)
    advance_message_ids(target)
    copied = {table.name: target.execute(select(func.count()).select_from(table)).scalar_one() for table in tables}
    if copied != totals:
        raise CheckpointStoreError(
            f"Copy verification failed: the source holds {totals} rows, the target {copied}; "
            "the target was left unchanged"
        )
    return TransferReport(
        sessions=totals["sessions"],
        messages=totals["messages"],
        checkpoints=totals["checkpoints"],
        entities=totals["entities"],
        facts=totals["facts"],
    )


def _in_statements(target: Connection, table: Table, rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """``rows`` in batches one statement on the target's server carries, each row checked
    first: a row too large for it raises ``PayloadTooLargeError`` before it is sent."""
    limit = statement_limit(target)
    if limit is None:
        yield rows
        return
    budget = limit[0] - STATEMENT_ALLOWANCE
    batch: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        label = row["id"] if "id" in row else (row["session_id"], row["checkpoint_id"])
        row_size = check_statement_size(target, row, where=f"{table.name} row {label!r}")
        if batch and size + row_size > budget:
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch
