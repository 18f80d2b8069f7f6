"""``obsku-checkpoint``: see and manage what an obsku checkpoint store holds.

Built on Typer and Rich, which come with the ``cli`` extra; nothing imports this
module unless the command runs. Every command uses the blocking store of
``obsku_checkpoint_sqlite.sync``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

try:
    import typer
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise SystemExit(f'obsku-checkpoint needs {exc.name}: pip install "obsku-checkpoint-sqlite[cli]"') from None

from alembic.util import CommandError
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from . import migrate
from ._engine import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE, create_sync_engine, translate
from .errors import CheckpointStoreError
from .schemas import Checkpoint, PruneReport, StoredMessage, TransferReport
from .sync import SqlAlchemyCheckpointStore
from .transfer import Progress as ProgressCallback
from .transfer import copy_database

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="obsku-checkpoint",
    help=(
        "See and manage the sessions, messages and graph checkpoints of obsku agents.\n\n"
        "Reads ./checkpoints.db unless --db or OBSKU_CHECKPOINT_URL names another database "
        "(a SQLite path, or a URL such as postgresql://user@host/db or mariadb://user@host/db).\n\n"
        "Start with [bold]obsku-checkpoint sessions[/bold], then [bold]show SESSION[/bold]."
    ),
    epilog=(
        "[bold]Examples[/bold]\n\n"
        "  obsku-checkpoint sessions --search scan\n\n"
        "  obsku-checkpoint show SESSION\n\n"
        "  obsku-checkpoint prune --keep-last 20 --older-than 30d      [dim]# dry run; add --apply[/dim]\n\n"
        "  obsku-checkpoint export backup.jsonl.gz\n\n"
        "  obsku-checkpoint copy ./checkpoints.db postgresql://me@db.internal/agents"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = typer.Typer(
    help="Schema migrations: upgrade, downgrade, and see where a database stands.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(db_app, name="db")

# Piped output goes to files and scripts: wide rows there, not the 80 columns Rich assumes.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
SessionArgument = Annotated[str, typer.Argument(help="A session id.", show_default=False)]


class CliError(Exception):
    """A failure to report as one line and exit code 1."""


# --- plumbing ---------------------------------------------------------------------------


def _handled(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the store's errors into one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            # Each write is a transaction, so the one cut short rolls back; no traceback needed.
            err.print("Interrupted.")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader (head, less) went away: stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except (CliError, CheckpointStoreError, CommandError, ArgumentError, OSError, ValueError) as exc:
            message = " ".join(str(exc).split())
            err.print(f"[bold red]error:[/bold red] {escape(message)}")
            raise typer.Exit(1) from None
        except DBAPIError as exc:  # outside a store, e.g. the db commands' own connections
            err.print(f"[bold red]error:[/bold red] {escape(' '.join(str(translate(exc)).split()))}")
            raise typer.Exit(1) from None

    return wrapper


def _database_url(value: str) -> str:
    # A bare path is a SQLite file: `--db ./runs.db` is what people type.
    return value if "://" in value else f"sqlite:///{value}"


@app.callback()
def _options(
    ctx: typer.Context,
    db: Annotated[
        str,
        typer.Option(
            "--db",
            envvar=URL_ENVIRONMENT_VARIABLE,
            help="The database: a SQLite file path or a SQLAlchemy URL.",
            show_default="./checkpoints.db",
        ),
    ] = DEFAULT_URL,
) -> None:
    ctx.obj = _database_url(db)


def _url(ctx: typer.Context) -> str:
    return str(ctx.find_root().obj)


def _require_existing(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database or "")
        if not path.exists():
            raise CliError(
                f"No database at {path}: run your agent (or examples/quickstart.py) first, "
                f"or pass --db / set {URL_ENVIRONMENT_VARIABLE}"
            )


@contextmanager
def _store(ctx: typer.Context, *, create: bool = False) -> Iterator[SqlAlchemyCheckpointStore]:
    """The store on the chosen database. Only ``create`` commands build a schema;
    the others refuse a database that is not at this package's schema."""
    url = _url(ctx)
    if not create:
        _require_existing(url)
    store = SqlAlchemyCheckpointStore(url, auto_migrate=create)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _progress(description: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on a terminal; nothing when stderr is piped or captured."""
    if not err.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _time(millis: int | None) -> str:
    if millis is None:
        return "-"
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _rows(report: PruneReport | TransferReport) -> str:
    return (
        f"{_count(report.sessions, 'session')}, {_count(report.messages, 'message')} "
        f"and {_count(report.checkpoints, 'checkpoint')}"
    )


def _short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


_LISTED_IDS = 10

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_AGE_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_age(value: str) -> int:
    """``30d``, ``12h``, ``45m``, ``90s`` or ``2w`` as milliseconds."""
    match = _AGE.match(value)
    if match is None:
        raise typer.BadParameter(f"{value!r} is not an age like 30d, 12h, 45m or 2w")
    return int(match.group(1)) * _AGE_UNITS_MS[match.group(2)]


def _now_ms() -> int:
    return int(datetime.now(tz=timezone.utc).timestamp() * 1000)


# --- reading ----------------------------------------------------------------------------


@app.command()
@_handled
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
    with _store(ctx) as store:
        page = store.session_summaries(workspace, limit=limit, cursor=cursor, search=search)
    if as_json:
        _print_json({"sessions": [item.model_dump(mode="json") for item in page], "next_cursor": page.next_cursor})
        return
    if not page:
        out.print("No sessions." if cursor is None else "No more sessions.")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True, style="cyan")
    table.add_column("Title", min_width=12, ratio=1)
    table.add_column("Workspace")
    table.add_column("Msgs", justify="right")
    table.add_column("Ckpts", justify="right")
    table.add_column("Step", justify="right")
    table.add_column("Updated", no_wrap=True)
    for item in page:
        session = item.session
        latest = item.latest_checkpoint
        title = session.title or ""
        if session.forked_from_session_id:
            title += " [dim](fork)[/dim]"
        table.add_row(
            session.id, title, session.workspace_id or "", str(item.message_count), str(item.checkpoint_count),
            "-" if latest is None else str(latest.step), _time(session.updated_at),
        )  # fmt: skip
    out.print(table)
    if page.next_cursor:
        out.print(f"\nMore: obsku-checkpoint sessions --cursor {page.next_cursor}", style="dim")


@app.command()
@_handled
def show(
    ctx: typer.Context,
    session_id: SessionArgument,
    last: Annotated[int, typer.Option("--messages", "-m", min=0, help="How many recent messages to show.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Show a session: its details, recent messages and checkpoints."""
    with _store(ctx) as store:
        session = store.get_session(session_id)
        if session is None:
            raise CliError(f"Session not found: {session_id}")
        recent = store.get_messages(session_id, limit=last)
        saved = store.list_checkpoints(session_id, limit=20)
    if as_json:
        _print_json(
            {
                "session": session.model_dump(mode="json"),
                "messages": [message.model_dump(mode="json") for message in recent],
                "checkpoints": [_checkpoint_ref(checkpoint) for checkpoint in saved],
            }
        )
        return
    out.print(f"[bold]{escape(session.title or '(untitled)')}[/bold]  [cyan]{session.id}[/cyan]")
    details = [
        ("Directory", session.directory),
        ("Workspace", session.workspace_id or "-"),
        ("Created", _time(session.created_at)),
        ("Updated", _time(session.updated_at)),
    ]
    if session.forked_from_session_id:
        details.append(("Forked from", f"{session.forked_from_session_id} at {session.forked_from_checkpoint_id}"))
    if session.metadata:
        details.append(("Metadata", json.dumps(session.metadata, ensure_ascii=False)))
    for label, value in details:
        out.print(f"  [dim]{label + ':':<12}[/dim] {escape(value)}")
    out.print(f"\n[bold]Recent messages[/bold] (last {len(recent)})")
    out.print(_messages_table(recent) if recent else "  none")
    out.print("\n[bold]Checkpoints[/bold] (latest first)")
    out.print(_checkpoints_table(saved) if saved else "  none")


@app.command()
@_handled
def messages(
    ctx: typer.Context,
    session_id: SessionArgument,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="Only the last N messages.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a session's messages, oldest first."""
    with _store(ctx) as store:
        found = store.get_messages(session_id, limit=limit)
    if as_json:
        _print_json([message.model_dump(mode="json") for message in found])
        return
    out.print(_messages_table(found, width=100) if found else "No messages.")


@app.command()
@_handled
def checkpoints(
    ctx: typer.Context,
    session_id: SessionArgument,
    namespace: Annotated[str | None, typer.Option("--namespace", help="Only this namespace.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=0, help="Only the latest N.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a session's checkpoints, latest first."""
    with _store(ctx) as store:
        found = store.list_checkpoints(session_id, namespace=namespace, limit=limit)
    if as_json:
        _print_json([_checkpoint_ref(checkpoint) for checkpoint in found])
        return
    out.print(_checkpoints_table(found) if found else "No checkpoints.")


@app.command()
@_handled
def checkpoint(
    ctx: typer.Context,
    checkpoint_id: Annotated[str, typer.Argument(help="A checkpoint id.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Print a checkpoint's full state as JSON."""
    with _store(ctx) as store:
        found = _require_checkpoint(store, checkpoint_id)
    data = found.model_dump(mode="json")
    if as_json or not out.is_terminal:
        _print_json(data)
    else:
        out.print_json(data=data)


@app.command()
@_handled
def diff(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="The older checkpoint id.", show_default=False)],
    second: Annotated[str, typer.Argument(help="The newer checkpoint id.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Show what changed between two checkpoints: node results and pending nodes."""
    with _store(ctx) as store:
        before = _require_checkpoint(store, first)
        after = _require_checkpoint(store, second)
    changes = checkpoint_diff(before, after)
    if as_json:
        _print_json(changes)
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
        parts = [f"{key} {value[0]!r} → {value[1]!r}" for key, value in change.items() if key != "output"]
        if "output" in change:
            parts.append("output changed")
        out.print(f"[yellow]~ {escape(name)}[/yellow]  {escape(', '.join(parts))}")
    if changes["pending_added"] or changes["pending_removed"]:
        out.print(f"pending: +{changes['pending_added'] or '[]'} -{changes['pending_removed'] or '[]'}", markup=False)


def checkpoint_diff(before: Checkpoint, after: Checkpoint) -> dict[str, Any]:
    """What differs between two checkpoints' node results and pending nodes."""
    old = {name: result.model_dump(mode="json") for name, result in before.node_results.items()}
    new = {name: result.model_dump(mode="json") for name, result in after.node_results.items()}
    changed: dict[str, dict[str, list[Any]]] = {}
    for name in sorted(old.keys() & new.keys()):
        fields = sorted(old[name].keys() | new[name].keys())
        difference = {
            key: [old[name].get(key), new[name].get(key)] for key in fields if old[name].get(key) != new[name].get(key)
        }
        if difference:
            changed[name] = difference
    return {
        "from": before.id,
        "to": after.id,
        "step": [before.step, after.step],
        "nodes": {
            "added": sorted(new.keys() - old.keys()),
            "removed": sorted(old.keys() - new.keys()),
            "changed": changed,
        },
        "pending_added": [node for node in after.pending_nodes if node not in before.pending_nodes],
        "pending_removed": [node for node in before.pending_nodes if node not in after.pending_nodes],
    }


def _require_checkpoint(store: SqlAlchemyCheckpointStore, checkpoint_id: str) -> Checkpoint:
    found = store.get_checkpoint(checkpoint_id)
    if found is None:
        raise CliError(f"Checkpoint not found: {checkpoint_id}")
    # Node results are validated on first use: use them here, so a corrupt one reports
    # as the CheckpointCorruptionError it is, not wrapped by pydantic's serializer.
    len(found.node_results)
    return found


def _checkpoint_ref(checkpoint: Checkpoint) -> dict[str, Any]:
    return checkpoint.model_dump(mode="json", exclude={"node_results", "cycle_state"}) | {
        "nodes": {name: result.status for name, result in checkpoint.node_results.items()}
    }


def _messages_table(found: list[StoredMessage], width: int = 70) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("ID", justify="right", style="dim")
    table.add_column("Time", no_wrap=True)
    table.add_column("Role")
    table.add_column("Content")
    table.add_column("Tokens", justify="right")
    for message in found:
        content = _short(message.content, width)
        if message.tool_calls:
            content = (content + " " if content else "") + "→ " + ", ".join(call.name for call in message.tool_calls)
        if message.tool_results:
            results = "; ".join(_short(result.content, width // 2) for result in message.tool_results)
            content = (content + " " if content else "") + "← " + results
        tokens = "" if message.tokens_in is None else f"{message.tokens_in}/{message.tokens_out or 0}"
        table.add_row(str(message.id), _time(message.created_at), message.role, escape(content), tokens)
    return table


def _checkpoints_table(found: list[Checkpoint]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True, style="cyan")
    table.add_column("Namespace")
    table.add_column("Step", justify="right")
    table.add_column("Ver", justify="right")
    table.add_column("Source")
    table.add_column("Nodes")
    table.add_column("Pending")
    table.add_column("Saved", no_wrap=True)
    for saved in found:
        nodes = ", ".join(f"{name}:{result.status}" for name, result in saved.node_results.items())
        table.add_row(
            saved.id, saved.namespace or '""', str(saved.step), str(saved.version), saved.source,
            escape(_short(nodes, 40)), escape(", ".join(saved.pending_nodes)), _time(saved.created_at),
        )  # fmt: skip
    return table


# --- changing ---------------------------------------------------------------------------


@app.command()
@_handled
def fork(
    ctx: typer.Context,
    checkpoint_id: Annotated[str, typer.Argument(help="The checkpoint to branch from.", show_default=False)],
    title: Annotated[str | None, typer.Option("--title", "-t", help="The new session's title.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Start a new session from a checkpoint, with the history it saw."""
    with _store(ctx) as store:
        forked = store.fork(checkpoint_id, title=title)
    if as_json:
        _print_json(forked.model_dump(mode="json"))
        return
    out.print(f"Forked into session [cyan]{forked.id}[/cyan] ({escape(forked.title or '')})")


@app.command()
@_handled
def delete(
    ctx: typer.Context,
    session_id: SessionArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a session with its messages and checkpoints."""
    with _store(ctx) as store:
        session = store.get_session(session_id)
        if session is None:
            raise CliError(f"Session not found: {session_id}")
        if not yes:
            question = f"Delete session {session_id} ({session.title or 'untitled'}) with its messages and checkpoints?"
            if not typer.confirm(question, default=False, err=True):
                err.print("Nothing deleted.")
                raise typer.Exit(1)
        store.delete_session(session_id)
    out.print(f"Deleted session {session_id}.")


@app.command()
@_handled
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
    now = _now_ms()
    checkpoints_before = None if older_than is None else now - parse_age(older_than)
    sessions_idle_before = None if idle_sessions is None else now - parse_age(idle_sessions)
    with _store(ctx) as store, _progress("Pruning") as progress:
        report = store.prune(
            keep_last=keep_last, checkpoints_before=checkpoints_before, sessions_idle_before=sessions_idle_before,
            workspace_id=workspace, protect_lineage=not break_lineage, dry_run=not apply, vacuum=vacuum and apply,
            progress=progress,
        )  # fmt: skip
    if as_json:
        _print_json(report.model_dump(mode="json"))
        return
    verb = "Would delete" if report.dry_run else "Deleted"
    out.print(f"{verb} {_rows(report)}.")
    if report.protected_checkpoints:
        out.print(
            f"Kept {_count(report.protected_checkpoints, 'checkpoint')} that kept checkpoints or forks name as parent "
            "(--break-lineage deletes them too)."
        )
    if report.dry_run and report.session_ids:
        listed = ", ".join(report.session_ids[:_LISTED_IDS])
        more = len(report.session_ids) - _LISTED_IDS
        out.print(f"Idle sessions: {listed}" + (f" and {more} more" if more > 0 else "") + ".")
    if report.dry_run:
        out.print("Dry run: nothing was deleted. Add --apply to delete.", style="dim")
    elif report.vacuumed:
        out.print("Vacuumed the database file.")


# --- moving -----------------------------------------------------------------------------


@app.command("export")
@_handled
def export_command(
    ctx: typer.Context,
    output: Annotated[str, typer.Argument(help="The file to write (.gz to compress), or - for standard output.")] = "-",
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="Only this workspace.")] = None,
    session: Annotated[list[str] | None, typer.Option("--session", help="Only this session (repeatable).")] = None,
) -> None:
    """Write sessions, messages and checkpoints to a JSON Lines file."""
    with _store(ctx) as store, _progress("Exporting sessions") as progress:
        target = sys.stdout.buffer if output == "-" else output
        report = store.export_sessions(target, workspace_id=workspace, session_ids=session or None, progress=progress)
    where = "standard output" if output == "-" else output
    err.print(f"Exported {_rows(report)} to {where}.")


@app.command("import")
@_handled
def import_command(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="An export file (.gz if compressed).", show_default=False)],
    new_ids: Annotated[bool, typer.Option("--new-ids", help="Import a copy under fresh ids.")] = False,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Leave sessions whose id exists alone instead of failing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Read an export file into the database: all of it, or on any error nothing."""
    with _store(ctx, create=True) as store, _progress("Importing") as progress:
        report = store.import_sessions(
            source, new_ids=new_ids, on_conflict="skip" if skip_existing else "fail", progress=progress
        )
    if as_json:
        _print_json(report.model_dump(mode="json"))
        return
    out.print(
        f"Imported {_rows(report)}."
        + (f" Skipped {_count(report.skipped_sessions, 'existing session')}." if report.skipped_sessions else "")
    )


@app.command()
@_handled
def copy(
    source_url: Annotated[str, typer.Argument(help="The database to copy from.", show_default=False)],
    target_url: Annotated[str, typer.Argument(help="An empty database to copy into.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Copy a whole database into another, e.g. a SQLite file into PostgreSQL.

    The target gets the schema, every row with its id, and a count check at the end.
    """
    source_url, target_url = _database_url(source_url), _database_url(target_url)
    _require_existing(source_url)
    with _progress("Copying rows") as progress:
        report = copy_database(source_url, target_url, progress=progress)
    if as_json:
        _print_json(report.model_dump(mode="json"))
        return
    out.print(f"Copied {_rows(report)}; counts verified.")


# --- schema -----------------------------------------------------------------------------


@contextmanager
def _migration_connection(ctx: typer.Context) -> Iterator[Any]:
    engine = create_sync_engine(_url(ctx))
    try:
        with engine.connect() as conn:
            conn.execution_options(obsku_write=True)
            with conn.begin():
                yield conn
    finally:
        engine.dispose()


@db_app.command("current")
@_handled
def db_current(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print the database's schema revision and whether it is this package's newest."""
    _require_existing(_url(ctx))
    with _migration_connection(ctx) as conn:
        revision = migrate.current_revision(conn)
    head = migrate.head_revision()
    known = revision is None or migrate.is_known_revision(revision)
    if as_json:
        _print_json({"current": revision, "head": head, "up_to_date": revision == head, "known": known})
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
@_handled
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="The revision to reach.")] = "head",
) -> None:
    """Build or upgrade the schema (a database made by the original package is adopted)."""
    with _migration_connection(ctx) as conn:
        current = migrate.current_revision(conn)
        migrate.upgrade(conn, revision)
        reached = migrate.current_revision(conn)
    out.print(f"At revision {reached}." if reached != current else f"Already at revision {reached}.")


@db_app.command("downgrade")
@_handled
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="The revision to go back to; 'base' drops every table.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Take the schema back to an older revision."""
    _require_existing(_url(ctx))
    if not yes and not typer.confirm(
        f"Downgrade {_url(ctx)} to {revision}? Columns or tables (and their data) may be dropped.", err=True
    ):
        err.print("Nothing changed.")
        raise typer.Exit(1)
    with _migration_connection(ctx) as conn:
        migrate.downgrade(conn, revision)
        reached = migrate.current_revision(conn)
    out.print(f"At revision {reached or 'base (no schema)'}.")


@db_app.command("history")
@_handled
def db_history(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the schema revisions this package ships, newest first."""
    head = migrate.head_revision()
    revisions = [
        {"revision": script.revision, "down_revision": script.down_revision, "doc": script.doc}
        for script in migrate.script_directory().walk_revisions()
    ]
    if as_json:
        _print_json(revisions)
        return
    for item in revisions:
        marker = " (head)" if item["revision"] == head else ""
        out.print(f"{item['revision']}{marker}  {escape(str(item['doc']))}")


def main() -> None:
    """The console script's entry point."""
    app(prog_name="obsku-checkpoint")
