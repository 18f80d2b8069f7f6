"""Commands that read: sessions, show, messages, checkpoints, checkpoint, diff."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from ..dto import Checkpoint, checkpoint_diff
from ..ops import thread_upkeep
from ..sync import SqlAlchemyCheckpointStore
from .application import CliError, JsonOption, SessionArgument, app, handled, open_store, out, same_command
from .render import (
    as_json_text,
    checkpoint_ref,
    checkpoints_table,
    langgraph_table,
    local_time,
    messages_table,
    print_json,
    sessions_table,
)

# The longest node output, as JSON, that diff prints in full.
SHORT_OUTPUT = 40


@app.command()
@handled
def sessions(
    ctx: typer.Context,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Match title, directory or id (any case).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Sessions per page.")] = 20,
    cursor: Annotated[str | None, typer.Option("--cursor", help="The next page, as printed under the table.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List sessions, most recently updated first, with their counts and where they stand."""
    with open_store(ctx) as store:
        page = store.session_summaries(workspace, limit=limit, cursor=cursor, search=search)
    if as_json:
        print_json({"sessions": [item.model_dump(mode="json") for item in page], "next_cursor": page.next_cursor})
        return
    if not page:
        out.print("No sessions." if cursor is None else "No more sessions.")
        return
    out.print(sessions_table(page))
    if page.next_cursor:
        out.print(f"\nMore: {same_command(ctx, cursor=page.next_cursor)}", style="dim", markup=False, soft_wrap=True)


@app.command()
@handled
def show(
    ctx: typer.Context,
    session_id: SessionArgument,
    last: Annotated[int, typer.Option("--messages", "-m", min=0, help="How many recent messages to show.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Show a session: its details, recent messages and checkpoints."""
    with open_store(ctx) as store:
        session = store.get_session(session_id)
        if session is None:
            raise CliError(f"Session not found: {session_id}")
        recent = store.get_messages(session_id, limit=last)
        saved = store.list_checkpoints(session_id, limit=20)
        # A LangGraph thread's checkpoints, read without LangGraph: ids, steps, writes.
        graph = store._runner.run(thread_upkeep.thread_checkpoints, session_id, 20, write=False)
    if as_json:
        print_json(
            {
                "session": session.model_dump(mode="json"),
                "messages": [message.model_dump(mode="json") for message in recent],
                "checkpoints": [checkpoint_ref(checkpoint) for checkpoint in saved],
                "langgraph_checkpoints": graph,
            }
        )
        return
    out.print(f"[bold]{escape(session.title or '(untitled)')}[/bold]  [cyan]{session.id}[/cyan]")
    details = [
        ("Directory", session.directory),
        ("Workspace", session.workspace_id or "-"),
        ("Created", local_time(session.created_at)),
        ("Updated", local_time(session.updated_at)),
    ]
    if session.forked_from_session_id:
        details.append(("Forked from", f"{session.forked_from_session_id} at {session.forked_from_checkpoint_id}"))
    if session.metadata:
        details.append(("Metadata", json.dumps(session.metadata, ensure_ascii=False)))
    for label, value in details:
        out.print(f"  [dim]{label + ':':<12}[/dim] {escape(value)}")
    out.print(f"\n[bold]Recent messages[/bold] (last {len(recent)})")
    out.print(messages_table(recent) if recent else "  none")
    out.print("\n[bold]Checkpoints[/bold] (latest first)")
    out.print(checkpoints_table(saved) if saved else "  none")
    if graph:
        out.print("\n[bold]LangGraph checkpoints[/bold] (newest first)")
        out.print(langgraph_table(graph))


@app.command()
@handled
def messages(
    ctx: typer.Context,
    session_id: SessionArgument,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="Only the last N messages.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a session's messages, oldest first."""
    with open_store(ctx) as store:
        found = store.get_messages(session_id, limit=limit)
    if as_json:
        print_json([message.model_dump(mode="json") for message in found])
        return
    out.print(messages_table(found, width=100) if found else "No messages.")


@app.command()
@handled
def checkpoints(
    ctx: typer.Context,
    session_id: SessionArgument,
    namespace: Annotated[str | None, typer.Option("--namespace", help="Only this namespace.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="Only the latest N.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a session's checkpoints, latest first."""
    with open_store(ctx) as store:
        found = store.list_checkpoints(session_id, namespace=namespace, limit=limit)
    if as_json:
        print_json([checkpoint_ref(checkpoint) for checkpoint in found])
        return
    out.print(checkpoints_table(found) if found else "No checkpoints.")


@app.command()
@handled
def checkpoint(
    ctx: typer.Context,
    checkpoint_id: Annotated[str, typer.Argument(help="A checkpoint id.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Print a checkpoint's full state as JSON."""
    with open_store(ctx) as store:
        found = require_checkpoint(store, checkpoint_id)
    data = found.model_dump(mode="json")
    if as_json or not out.is_terminal:
        print_json(data)
    else:
        out.print_json(data=data)


@app.command()
@handled
def diff(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="The older checkpoint id.", show_default=False)],
    second: Annotated[str, typer.Argument(help="The newer checkpoint id.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Show what changed between two checkpoints: node results and pending nodes."""
    with open_store(ctx) as store:
        before = require_checkpoint(store, first)
        after = require_checkpoint(store, second)
    changes = checkpoint_diff(before, after)
    if as_json:
        print_json(changes)
        return
    out.print(
        f"step {before.step} → {after.step}, version {before.version} → {after.version}, "
        f"source {before.source} → {after.source}"
    )
    nodes = changes["nodes"]
    if not any(nodes.values()) and not changes["pending_added"] and not changes["pending_removed"]:
        out.print("No change in node results or pending nodes.")
        return
    for name in nodes["added"]:
        out.print(f"[green]+ {escape(name)}[/green]  {after.node_results[name].status}")
    for name in nodes["removed"]:
        out.print(f"[red]- {escape(name)}[/red]  was {before.node_results[name].status}")
    for name, change in nodes["changed"].items():
        parts = []
        for key, (old, new) in change.items():
            shown = (as_json_text(old), as_json_text(new))
            # An output is shown when short; a long one would bury the other changes.
            if key == "output" and max(map(len, shown)) > SHORT_OUTPUT:
                parts.append("output changed")
            else:
                parts.append(f"{key} {shown[0]} → {shown[1]}")
        out.print(f"[yellow]~ {escape(name)}[/yellow]  {escape(', '.join(parts))}")
    if changes["pending_added"] or changes["pending_removed"]:
        out.print(
            f"pending: +{as_json_text(changes['pending_added'])} -{as_json_text(changes['pending_removed'])}",
            markup=False,
        )


def require_checkpoint(store: SqlAlchemyCheckpointStore, checkpoint_id: str) -> Checkpoint:
    found = store.get_checkpoint(checkpoint_id)
    if found is None:
        raise CliError(f"Checkpoint not found: {checkpoint_id}")
    # Node results are validated on first use: use them here, so a corrupt one reports
    # as the CheckpointCorruptionError it is, not wrapped by pydantic's serializer.
    len(found.node_results)
    return found
