"""Checkpoints: save one under a store-assigned version, and read the latest or a listing."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from .. import jsonplus
from ..db import queries
from ..db.rows import checkpoint_from_row, checkpoints_from_rows
from ..db.values import check_statement_size, encode_models, new_id, now_ms, reject_unstorable_text
from ..dto import Checkpoint, NewCheckpoint, NodeResults
from ..errors import CheckpointVersionConflictError, SessionNotFoundError
from ..runtime.failures import is_foreign_key_violation, is_unique_violation
from ..runtime.fastpath import execute, pipeline
from .sessions import require_session


def save_checkpoint(conn: Connection, new: NewCheckpoint) -> Checkpoint:
    checkpoint_id = new_id()
    now = now_ms()
    params = {
        "id": checkpoint_id,
        "session_id": new.session_id,
        "namespace": new.namespace,
        "parent_id": new.parent_id,
        "version": new.version,
        "step": new.step,
        "node_id": new.node_id,
        # One model_dump of the node results, not one per node: pydantic-core walks them all at once.
        "node_results": jsonplus.dumps(
            new.model_dump(by_alias=True, exclude_none=True, include={"node_results"})["nodeResults"],
            field="node_results",
        ),
        "pending_nodes": jsonplus.dumps(new.pending_nodes, field="pending_nodes"),
        "cycle_state": encode_models(new.cycle_state, "cycle_state"),
        "source": new.source,
        "created_at": now,
    }
    reject_unstorable_text(conn, {"namespace": new.namespace, "node_id": new.node_id, "parent_id": new.parent_id})
    check_statement_size(conn, params)
    returning = conn.dialect.insert_returning
    try:
        # Sent together, with the commit, where the driver can: the results are read after.
        with pipeline(conn) as pipelined:
            locked = execute(conn, queries.LOCK_SESSION, {"session_id": new.session_id})
            if not pipelined:
                if locked.first() is None:
                    raise SessionNotFoundError(new.session_id)
                if new.version is not None and execute(conn, queries.VERSION_EXISTS, params).first() is not None:
                    raise CheckpointVersionConflictError(new.session_id, new.namespace, new.version)
            inserted = execute(
                conn, queries.INSERT_CHECKPOINT_RETURNING if returning else queries.INSERT_CHECKPOINT, params
            )
    except IntegrityError as exc:
        # Pipelined, the database's own constraints say what the checks above would have.
        if is_foreign_key_violation(exc):
            raise SessionNotFoundError(new.session_id) from None
        if new.version is not None and is_unique_violation(exc):
            raise CheckpointVersionConflictError(new.session_id, new.namespace, new.version) from None
        raise
    if pipelined and locked.first() is None:
        raise SessionNotFoundError(new.session_id)
    if returning:
        version = inserted.scalar_one()
    else:
        version = execute(conn, queries.VERSION_OF, {"checkpoint_id": checkpoint_id}).scalar_one()
    return Checkpoint.model_validate({  # not model_construct: see messages.add_message
        "id": checkpoint_id, "session_id": new.session_id, "namespace": new.namespace,
        "version": version, "step": new.step, "node_results": NodeResults(new.node_results),
        "pending_nodes": new.pending_nodes, "source": new.source, "parent_id": new.parent_id,
        "node_id": new.node_id, "cycle_state": new.cycle_state, "created_at": now,
    })  # fmt: skip


def get_checkpoint(conn: Connection, checkpoint_id: str) -> Checkpoint | None:
    row = execute(conn, queries.GET_CHECKPOINT, {"checkpoint_id": checkpoint_id}).one_or_none()
    return None if row is None else checkpoint_from_row(row)


def get_latest_checkpoint(conn: Connection, session_id: str, namespace: str | None) -> Checkpoint | None:
    params = {"session_id": session_id, "namespace": namespace, "limit": 1}
    query = queries.checkpoints_query(in_namespace=namespace is not None, limited=True)
    row = execute(conn, query, params).first()
    return None if row is None else checkpoint_from_row(row)


def list_checkpoints(conn: Connection, session_id: str, namespace: str | None, limit: int | None) -> list[Checkpoint]:
    if limit == 0:
        require_session(conn, session_id)
        return []
    params = {"session_id": session_id, "namespace": namespace, "limit": limit}
    query = queries.checkpoints_query(in_namespace=namespace is not None, limited=limit is not None)
    rows = execute(conn, query, params).all()
    if not rows:
        require_session(conn, session_id)
    return checkpoints_from_rows(rows)
