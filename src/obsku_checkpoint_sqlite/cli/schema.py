"""Commands for schema migrations: current, upgrade, downgrade, history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..db import migrate
from ..runtime.engines import create_sync_engine
from .application import JsonOption, db_app, err, handled, out, require_existing, url_of
from .render import print_json


@contextmanager
def migration_connection(ctx: typer.Context) -> Iterator[Any]:
    engine = create_sync_engine(url_of(ctx))
    try:
        with engine.connect() as conn:
            conn.execution_options(obsku_write=True)
            with conn.begin():
                yield conn
    finally:
        engine.dispose()


@db_app.command("current")
@handled
def db_current(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print the database's schema revision and whether it is this package's newest."""
    require_existing(url_of(ctx))
    with migration_connection(ctx) as conn:
        revision = migrate.current_revision(conn)
    head = migrate.head_revision()
    known = revision is None or migrate.is_known_revision(revision)
    if as_json:
        print_json({"current": revision, "head": head, "up_to_date": revision == head, "known": known})
        return
    if revision == head:
        out.print(f"{revision} (head)")
    elif revision is None:
        out.print(f"none: no schema yet (head is {head}); run `obsku-checkpoint db upgrade`")
    elif not known:
        out.print(f"{revision}: newer than this package knows (its head is {head}); upgrade the package")
    else:
        out.print(f"{revision}: behind head {head}; run `obsku-checkpoint db upgrade`")


@db_app.command("upgrade")
@handled
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="The revision to reach.")] = "head",
) -> None:
    """Build or upgrade the schema (a database made by the original package is adopted)."""
    with migration_connection(ctx) as conn:
        current = migrate.current_revision(conn)
        migrate.upgrade(conn, revision)
        reached = migrate.current_revision(conn)
    out.print(f"At revision {reached}." if reached != current else f"Already at revision {reached}.")


@db_app.command("downgrade")
@handled
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="The revision to go back to; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Take the schema back to an older revision."""
    require_existing(url_of(ctx))
    if not yes and not typer.confirm(
        f"Downgrade {url_of(ctx)} to {revision}? Columns or tables (and their data) may be dropped.", err=True
    ):
        err.print("Nothing changed.")
        raise typer.Exit(1)
    with migration_connection(ctx) as conn:
        migrate.downgrade(conn, revision)
        reached = migrate.current_revision(conn)
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
