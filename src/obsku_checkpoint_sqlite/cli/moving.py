"""Commands that move data: export, import, copy."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..runtime.urls import database_url
from ..transfer import copy_database
from .application import CliError, JsonOption, app, err, handled, open_store, out, progress_bar, require_existing
from .render import count, in_words, print_json, rows_moved


@app.command("export")
@handled
def export_command(
    ctx: typer.Context,
    output: Annotated[str, typer.Argument(help="The file to write (.gz to compress), or - for standard output.")] = "-",
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")] = None,
    session: Annotated[list[str] | None, typer.Option("--session", help="Only this session (repeatable).")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace the file if it exists.")] = False,
) -> None:
    """Write sessions, messages and checkpoints, with their entities and facts, to a JSON Lines file.

    The file is new, readable by you only (mode 0600), and appears once complete.
    Facts from no session go too when no --session is given (with --workspace, that
    workspace's).
    """
    with open_store(ctx) as store, progress_bar("Exporting sessions") as progress:
        target = sys.stdout.buffer if output == "-" else output
        try:
            report = store.export_sessions(
                target, workspace_id=workspace, session_ids=session or None, overwrite=force, progress=progress
            )
        except FileExistsError:
            raise CliError(f"{output} exists already: pass --force to replace it") from None
    where = "standard output" if output == "-" else output
    err.print(f"Exported {rows_moved(report)} to {where}.")


@app.command("import")
@handled
def import_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="An export file (gzip or not), or - for standard input.", show_default=False)
    ],
    new_ids: Annotated[bool, typer.Option("--new-ids", help="Import a copy under fresh ids.")] = False,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing", help="Leave sessions, entities and facts whose id exists alone instead of failing."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Read an export file into the database: all of it, or on any error nothing."""
    with open_store(ctx, create=True) as store, progress_bar("Importing") as progress:
        report = store.import_sessions(
            sys.stdin.buffer if source == "-" else source,
            new_ids=new_ids,
            on_conflict="skip" if skip_existing else "fail",
            progress=progress,
        )
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    skipped = [
        count(number, f"existing {noun}", f"existing {plural}")
        for number, noun, plural in (
            (report.skipped_sessions, "session", "sessions"),
            (report.skipped_entities, "entity", "entities"),
            (report.skipped_facts, "fact", "facts"),
        )
        if number
    ]
    out.print(f"Imported {rows_moved(report)}." + (f" Skipped {in_words(skipped)}." if skipped else ""))


@app.command()
@handled
def copy(
    source_url: Annotated[str, typer.Argument(help="The database to copy from.", show_default=False)],
    target_url: Annotated[str, typer.Argument(help="An empty database to copy into.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Copy a whole database into another, e.g. a SQLite file into PostgreSQL.

    The target gets the schema, every row with its id, and a count check at the end.
    """
    source, target = database_url(source_url), database_url(target_url)
    require_existing(source)
    with progress_bar("Copying rows") as progress:
        report = copy_database(source, target, progress=progress)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    out.print(f"Copied {rows_moved(report)}; counts verified.")
