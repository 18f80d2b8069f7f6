"""The command-line app: its options, its database, and how it reports errors and progress."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from alembic.util import CommandError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ..errors import CheckpointStoreError
from ..ops.jobs import Progress as ProgressCallback
from ..runtime.failures import translate
from ..runtime.urls import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE
from ..sync import SqlAlchemyCheckpointStore

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


def handled(command: Callable[P, R]) -> Callable[P, R]:
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


def database_url(value: str) -> str:
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
    ctx.obj = database_url(db)


def url_of(ctx: typer.Context) -> str:
    return str(ctx.find_root().obj)


def require_existing(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database or "")
        if not path.exists():
            raise CliError(
                f"No database at {path}: run your agent (or examples/quickstart.py) first, "
                f"or pass --db / set {URL_ENVIRONMENT_VARIABLE}"
            )


@contextmanager
def open_store(ctx: typer.Context, *, create: bool = False) -> Iterator[SqlAlchemyCheckpointStore]:
    """The store on the chosen database. Only ``create`` commands build a schema;
    the others refuse a database that is not at this package's schema."""
    url = url_of(ctx)
    if not create:
        require_existing(url)
    store = SqlAlchemyCheckpointStore(url, auto_migrate=create)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback | None]:
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


LISTED_IDS = 10

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_AGE_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_age(value: str) -> int:
    """``30d``, ``12h``, ``45m``, ``90s`` or ``2w`` as milliseconds."""
    match = _AGE.match(value)
    if match is None:
        raise typer.BadParameter(f"{value!r} is not an age like 30d, 12h, 45m or 2w")
    return int(match.group(1)) * _AGE_UNITS_MS[match.group(2)]


def now_ms() -> int:
    return int(datetime.now(tz=timezone.utc).timestamp() * 1000)
