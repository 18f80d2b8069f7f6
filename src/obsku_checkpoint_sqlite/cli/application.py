"""The command-line app: its options, its database, and how it reports errors and progress."""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import click
import typer
from alembic.util import CommandError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import URL
from sqlalchemy.exc import ArgumentError, DBAPIError
from typer.core import TyperGroup

from .. import __version__
from ..errors import CheckpointStoreError, SchemaError
from ..ops.jobs import Progress as ProgressCallback
from ..runtime.failures import translate
from ..runtime.urls import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE, database_url, shown_url
from ..sync import SqlAlchemyCheckpointStore

P = ParamSpec("P")
R = TypeVar("R")
PROGRAM = "obsku-checkpoint"


class Commands(TyperGroup):
    """The app's command group, reporting a usage error in one line (and where to find help),
    as Unix tools do, instead of Rich's box."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            # Not standalone, so Click hands usage errors here instead of printing them.
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            # Rich printed the help as the error was made; plain Click returns it.
            if exc.format_message().strip():
                click.echo(exc.format_message())
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            err.print(f"[bold red]error:[/bold red] {escape(' '.join(exc.format_message().split()))}")
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                err.print(f"Try '{' '.join([PROGRAM, *command_path(ctx), '--help'])}'.")
            sys.exit(exc.exit_code)
        except click.Abort:
            err.print("Aborted.")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=Commands,
    name="obsku-checkpoint",
    help=(
        "See and manage the sessions, messages and graph checkpoints of obsku agents.\n\n"
        "Reads ./checkpoints.db unless --db or OBSKU_CHECKPOINT_URL names another database "
        "(a SQLite path, or a URL such as postgresql://user@host/db or mariadb://user@host/db; "
        "an asyncio driver's URL, such as postgresql+asyncpg://..., gets its blocking twin).\n\n"
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
        except SchemaError as exc:
            if not exc.needs_upgrade:
                fail(str(exc))
            fail(
                "The database has no schema yet, or an older one than this version of obsku-checkpoint: "
                f"upgrade it with `{command_line(click.get_current_context(), 'db', 'upgrade')}`"
            )
        except (CliError, CheckpointStoreError, CommandError, ArgumentError, OSError, ValueError) as exc:
            fail(str(exc))
        except DBAPIError as exc:  # outside a store, e.g. the db commands' own connections
            fail(str(translate(exc)))

    return wrapper


def fail(message: str) -> NoReturn:
    """Print ``message`` as the one error line and exit with code 1."""
    err.print(f"[bold red]error:[/bold red] {escape(' '.join(message.split()))}")
    raise typer.Exit(1) from None


@dataclass(frozen=True)
class Database:
    """The database the command works on, and how it was named."""

    url: URL
    given: str
    from_environment: bool

    def option(self) -> str:
        """``--db`` as a printed command gives it: the environment variable where the URL came
        from it, or what was typed (a URL with its password masked), quoted for the shell."""
        if self.from_environment:
            return f'--db "${URL_ENVIRONMENT_VARIABLE}"'
        return "--db " + shlex.quote(shown_url(self.given) if "://" in self.given else self.given)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROGRAM} {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    db: Annotated[
        str,
        typer.Option(
            "--db",
            envvar=URL_ENVIRONMENT_VARIABLE,
            help="The database: a SQLite file path (anything without ://) or a SQLAlchemy URL.",
            show_default="./checkpoints.db",
        ),
    ] = DEFAULT_URL,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    source = ctx.get_parameter_source("db")
    try:
        url = database_url(db)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--db'") from None
    ctx.obj = Database(url, db, from_environment=source is click.core.ParameterSource.ENVIRONMENT)


def database_of(ctx: click.Context) -> Database:
    found = ctx.find_root().obj
    assert isinstance(found, Database)
    return found


def url_of(ctx: click.Context) -> URL:
    return database_of(ctx).url


def command_path(ctx: click.Context) -> list[str]:
    """The command's names after the program's: ``["db", "upgrade"]``."""
    names: list[str] = []
    while ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return names


def command_line(ctx: click.Context, *words: str) -> str:
    """A command line to print: the program, ``--db`` as this one got it, then ``words``."""
    return " ".join([PROGRAM, database_of(ctx).option(), *(shlex.quote(word) for word in words)])


def same_command(ctx: click.Context, **changes: Any) -> str:
    """This command line again, with the options in ``changes`` set, to print as a hint."""
    words: list[str] = []
    positional: list[str] = []
    for param in ctx.command.params:
        if param.name is None or not param.expose_value:
            continue
        value = changes.get(param.name, ctx.params.get(param.name))
        if value is None:
            continue
        if isinstance(param, click.Argument):
            positional.extend(str(item) for item in (value if isinstance(value, (list, tuple)) else [value]))
        elif value == param.default or value in ((), []):
            continue
        elif getattr(param, "is_flag", False):
            words.append(param.opts[0])
        else:
            for item in value if param.multiple else [value]:
                words.extend([param.opts[0], str(item)])
    if any(word.startswith("-") for word in positional):
        positional.insert(0, "--")
    return command_line(ctx, *command_path(ctx), *words, *positional)


def confirm(question: str) -> bool:
    """Ask ``question`` on the terminal; no answer (standard input closed) is an error."""
    try:
        return typer.confirm(question, default=False, err=True)
    except click.Abort as exc:
        if isinstance(exc.__context__, EOFError):
            raise CliError("No answer on standard input: pass --yes to go ahead without asking") from None
        raise


def require_existing(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database or "")
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
