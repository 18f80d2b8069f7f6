"""Commands that change: fork, delete, prune."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from .application import (
    LISTED_IDS,
    CliError,
    JsonOption,
    SessionArgument,
    app,
    confirm,
    err,
    handled,
    now_ms,
    open_store,
    out,
    parse_age,
    progress_bar,
    same_command,
)
from .render import count, print_json, rows_moved


@app.command()
@handled
def fork(
    ctx: typer.Context,
    checkpoint_id: Annotated[str, typer.Argument(help="The checkpoint to branch from.", show_default=False)],
    title: Annotated[str | None, typer.Option("--title", "-t", help="The new session's title.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a new session from a checkpoint, with the history it saw."""
    with open_store(ctx) as store:
        forked = store.fork(checkpoint_id, title=title)
    if as_json:
        print_json(forked.model_dump(mode="json"))
        return
    out.print(f"Forked into session [cyan]{forked.id}[/cyan] ({escape(forked.title or '')})")


@app.command()
@handled
def delete(
    ctx: typer.Context,
    session_id: SessionArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a session with its messages and checkpoints. Asks first, unless --yes."""
    with open_store(ctx) as store:
        session = store.get_session(session_id)
        if session is None:
            raise CliError(f"Session not found: {session_id}")
        if not yes:
            question = f"Delete session {session_id} ({session.title or 'untitled'}) with its messages and checkpoints?"
            if not confirm(question):
                err.print("Nothing deleted.")
                return
        store.delete_session(session_id)
    out.print(f"Deleted session {session_id}.")


@app.command()
@handled
def prune(
    ctx: typer.Context,
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", min=0, help="Keep the newest N checkpoints per session and namespace.")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", metavar="AGE", help="Delete checkpoints older than AGE (30d, 12h).")
    ] = None,
    idle_sessions: Annotated[
        str | None,
        typer.Option("--idle-sessions", metavar="AGE", help="Delete whole sessions not updated for AGE."),
    ] = None,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Only in this workspace.")] = None,
    break_lineage: Annotated[
        bool,
        typer.Option(
            "--break-lineage", help="Also delete checkpoints that kept checkpoints or forks name as their parent."
        ),
    ] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Delete. Without it, only report what would go.")] = False,
    vacuum: Annotated[bool, typer.Option("--vacuum", help="Give the space back to the disk after (SQLite).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete old checkpoints and idle sessions. A dry run unless --apply.

    With --keep-last and --older-than together, a checkpoint goes only if both select it.
    """
    if keep_last is None and older_than is None and idle_sessions is None:
        raise typer.BadParameter("give --keep-last, --older-than or --idle-sessions")
    now = now_ms()
    checkpoints_before = None if older_than is None else now - parse_age(older_than)
    sessions_idle_before = None if idle_sessions is None else now - parse_age(idle_sessions)
    with open_store(ctx) as store, progress_bar("Pruning") as progress:
        report = store.prune(
            keep_last=keep_last, checkpoints_before=checkpoints_before, sessions_idle_before=sessions_idle_before,
            workspace_id=workspace, protect_lineage=not break_lineage, dry_run=not apply, vacuum=vacuum and apply,
            progress=progress,
        )  # fmt: skip
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    verb = "Would delete" if report.dry_run else "Deleted"
    out.print(f"{verb} {rows_moved(report)}.")
    if report.protected_checkpoints:
        out.print(
            f"Kept {count(report.protected_checkpoints, 'checkpoint')} that kept checkpoints or forks name as parent "
            "(--break-lineage deletes them too)."
        )
    if report.dry_run and report.session_ids:
        listed = ", ".join(report.session_ids[:LISTED_IDS])
        more = len(report.session_ids) - LISTED_IDS
        out.print(f"Idle sessions: {listed}" + (f" and {more} more" if more > 0 else "") + ".")
    if report.dry_run:
        out.print(
            f"Dry run: nothing was deleted. To delete: {same_command(ctx, apply=True)}",
            style="dim",
            markup=False,
            soft_wrap=True,
        )
    elif report.vacuumed:
        out.print("Vacuumed the database file.")
