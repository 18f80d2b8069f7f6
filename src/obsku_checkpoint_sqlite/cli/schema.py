"""Commands for schema migrations: current, upgrade, downgrade, history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from sqlalchemy import Connection

from ..db import migrate
from ..runtime.sync_runner import open_sync_runner
from ..runtime.urls import shown_url
from .application import JsonOption, command_line, confirm, db_app, err, handled, out, require_existing, url_of
from .render import print_json

T = TypeVar("T")


def in_schema_transaction(ctx: typer.Context, operation: Callable[..., T], *args: Any) -> T:
    """``operation(conn, *args)`` in one write transaction on the chosen database, whatever its schema."""
    runner = open_sync_runner(url_of(ctx), auto_migrate=False)
    try:
        return runner.run_on_any_schema(operation, *args, write=True)
    finally:
        runner.close()


def _upgrade(conn: Connection, revision: str) -> tuple[str | None, str | None]:
    before = migrate.current_revision(conn)
    migrate.upgrade(conn, revision)
    return before, migrate.current_revision(conn)


def _downgrade(conn: Connection, revision: str) -> str | None:
    migrate.downgrade(conn, revision)
    return migrate.current_revision(conn)


@db_app.command("current")
@handled
def db_current(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print the database's schema revision and whether it is this package's newest."""
    require_existing(url_of(ctx))
    revision = in_schema_transaction(ctx, migrate.current_revision)
    head = migrate.head_revision()
    known = revision is None or migrate.is_known_revision(revision)
    if as_json:
        print_json({"current": revision, "head": head, "up_to_date": revision == head, "known": known})
        return
    upgrade = command_line(ctx, "db", "upgrade")
    if revision == head:
        out.print(f"{revision} (head)")
    elif revision is None:
        out.print(f"none: no schema yet (head is {head}); run `{upgrade}`", markup=False, soft_wrap=True)
    elif not known:
        out.print(f"{revision}: newer than this package knows (its head is {head}); upgrade the package")
    else:
        out.print(f"{revision}: behind head {head}; run `{upgrade}`", markup=False, soft_wrap=True)


@db_app.command("upgrade")
@handled
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="The revision to reach.")] = "head",
) -> None:
    """Build or upgrade the schema (a database made by the original package is adopted)."""
    current, reached = in_schema_transaction(ctx, _upgrade, revision)
    out.print(f"At revision {reached}." if reached != current else f"Already at revision {reached}.")


@db_app.command("downgrade")
@handled
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="The revision to go back to; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Take the schema back to an older revision. Asks first, unless --yes."""
    require_existing(url_of(ctx))
    shown = shown_url(url_of(ctx))
    if not yes and not confirm(f"Downgrade {shown} to {revision}? Columns or tables (and their data) may be dropped."):
        err.print("Nothing changed.")
        return
    reached = in_schema_transaction(ctx, _downgrade, revision)
    out.print(f"At revision {reached or 'base (no schema)'}.")


@db_app.command("history")
@handled
def db_history(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the schema revisions this package ships, newest first."""
    head = migrate.head_revision()
    revisions = [
        {"revision": script.revision, "down_revision": script.down_revision, "doc": script.doc}
        for script in migrate.script_directory().walk_revisions()
    ]
    if as_json:
        print_json(revisions)
        return
    for item in revisions:
        marker = " (head)" if item["revision"] == head else ""
        out.print(f"{item['revision']}{marker}  {escape(str(item['doc']))}")
