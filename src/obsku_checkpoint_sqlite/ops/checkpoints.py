"""Checkpoints: save one under a store-assigned version, and read the latest or a listing."""

from __future__ import annotations

from sqlalchemy import Connection

from .. import jsonplus
from ..db import queries
from ..db.rows import checkpoints_from_rows
from ..db.values import check_statement_size, encode_models, new_id, now_ms, reject_unstorable_text
from ..dto import Checkpoint, NewCheckpoint, NodeResults
from ..errors import CheckpointVersionConflictError
from ..runtime.fastpath import execute
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
    require_session(conn, new.session_id, lock=True)
    if new.version is not None and execute(conn, queries.VERSION_EXISTS, params).first() is not None:
        raise CheckpointVersionConflictError(new.session_id, new.namespace, new.version)
    if conn.dialect.insert_returning:
        version = execute(conn, queries.INSERT_CHECKPOINT_RETURNING, params).scalar_one()
    else:
        execute(conn, queries.INSERT_CHECKPOINT, params)
        version = execute(conn, queries.VERSION_OF, {"checkpoint_id": checkpoint_id}).scalar_one()
    return Checkpoint.model_validate({  # not model_construct: see messages.add_message
        "id": checkpoint_id, "session_id": new.session_id, "namespace": new.namespace,
        "version": version, "step": new.step, "node_results": NodeResults(new.node_results),
        "pending_nodes": new.pending_nodes, "source": new.source, "parent_id": new.parent_id,
        "node_id": new.node_id, "cycle_state": new.cycle_state, "created_at": now,
    })  # fmt: skip


def get_checkpoint(conn: Connection, checkpoint_id: str) -> Checkpoint | None:
    row = execute(conn, queries.GET_CHECKPOINT, {"checkpoint_id": checkpoint_id}).one_or_none()
    return None if row is None else checkpoints_from_rows([row])[0]


def get_latest_checkpoint(conn: Connection, session_id: str, namespace: str | None) -> Checkpoint | None:
    params = {"session_id": session_id, "namespace": namespace, "limit": 1}
    query = queries.checkpoints_query(in_namespace=namespace is not None, limited=True)
    row = execute(conn, query, params).first()
    return None if row is None else checkpoints_from_rows([row])[0]


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
