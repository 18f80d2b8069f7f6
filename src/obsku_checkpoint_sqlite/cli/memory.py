"""Commands that read the memory store: entities, entity, facts, fact."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from .application import JsonOption, app, fail, handled, open_store, out
from .render import Listing, local_time, print_json, short

IdArgument = Annotated[str, typer.Argument(help="An id.", show_default=False)]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")]
WorkspaceOption = Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")]


def _listed(items: list[Any], skipped: list[Any]) -> dict[str, Any]:
    return {
        "items": [item.model_dump(mode="json", by_alias=True) for item in items],
        "skipped": [str(error) for error in skipped],
    }


@app.command()
@handled
def entities(
    ctx: typer.Context,
    session: Annotated[str | None, typer.Option("--session", "-s", help="Only this session's.")] = None,
    workspace: WorkspaceOption = None,
    kind: Annotated[str | None, typer.Option("--type", "-t", help="Only entities of this type.")] = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """List the memory store's entities, newest first."""
    with open_store(ctx) as store:
        found = store.list_entities(session_id=session, workspace_id=workspace, type=kind, limit=limit)
    if as_json:
        print_json(_listed(found, found.skipped))
        return
    if not found and not found.skipped:
        out.print("No entities.")
        return
    table = Listing(
        ("ID", "id", "cyan"), ("Name", "text", None), ("Type", "text", None), ("Workspace", "text", None),
        ("Links", "number", None), ("Vector", "number", None), ("Updated", "text", None),
    )  # fmt: skip
    for entity in found:
        table.add_row(
            entity.id, escape(short(entity.name)), escape(entity.type), escape(entity.workspace_id or ""),
            str(len(entity.relationships)), str(len(entity.embedding or [])), local_time(entity.updated_at),
        )  # fmt: skip
    out.print(table)
    for error in found.skipped:
        out.print(f"unreadable: {error}", style="yellow", markup=False)


@app.command()
@handled
def entity(ctx: typer.Context, entity_id: IdArgument, as_json: JsonOption = False) -> None:
    """Show one entity: its attributes, relationships and embedding's length."""
    with open_store(ctx) as store:
        found = store.get_entity(entity_id)
    if found is None:
        fail(f"No entity {entity_id!r}.")
    data = found.model_dump(mode="json", by_alias=True)
    if not as_json:
        data["embedding"] = None if found.embedding is None else f"{len(found.embedding)} numbers"
    print_json(data)


@app.command()
@handled
def facts(
    ctx: typer.Context,
    workspace: WorkspaceOption = None,
    min_confidence: Annotated[
        float | None, typer.Option("--min-confidence", help="Only facts at least this confident.")
    ] = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """List the memory store's facts, newest first."""
    with open_store(ctx) as store:
        found = store.list_facts(workspace_id=workspace, min_confidence=min_confidence, limit=limit)
    if as_json:
        print_json(_listed(found, []))
        return
    if not found:
        out.print("No facts.")
        return
    table = Listing(
        ("ID", "id", "cyan"), ("Content", "text", None), ("Conf.", "number", None), ("Workspace", "text", None),
        ("Session", "text", None), ("Created", "text", None),
    )  # fmt: skip
    for fact in found:
        confidence = "-" if fact.confidence is None else f"{fact.confidence:g}"
        table.add_row(
            fact.id, escape(short(fact.content)), confidence, escape(fact.workspace_id or ""),
            escape(fact.source_session_id or ""), local_time(fact.created_at),
        )  # fmt: skip
    out.print(table)


@app.command()
@handled
def fact(ctx: typer.Context, fact_id: IdArgument, as_json: JsonOption = False) -> None:
    """Show one fact."""
    with open_store(ctx) as store:
        found = store.get_fact(fact_id)
    if found is None:
        fail(f"No fact {fact_id!r}.")
    data = found.model_dump(mode="json", by_alias=True)
    if not as_json:
        data["embedding"] = None if found.embedding is None else f"{len(found.embedding)} numbers"
    print_json(data)
