"""Alembic environment for the checkpoint store's schema.

The store and ``obsku-checkpoint db upgrade`` pass a live connection in
``config.attributes["connection"]``, inside their own transaction, having taken the
schema lock and refused what they must not migrate. Alembic's own command line gets
the same: the same runner, lock and refusals (``migrate.command_line_guard``), so that
``alembic upgrade head`` builds, upgrades and adopts as ``db upgrade`` does, and prints
what it runs. The URL comes from ``-x url=...``, else ``OBSKU_CHECKPOINT_URL``, else the
ini's ``sqlalchemy.url``, else ``sqlite:///./checkpoints.db``.
"""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection

from obsku_checkpoint_sqlite.db import migrate
from obsku_checkpoint_sqlite.db.models import Base
from obsku_checkpoint_sqlite.errors import CheckpointStoreError
from obsku_checkpoint_sqlite.runtime.sync_runner import open_sync_runner
from obsku_checkpoint_sqlite.runtime.urls import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE

config = context.config


def database_url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get(URL_ENVIRONMENT_VARIABLE)
        or config.get_main_option("sqlalchemy.url")
        or DEFAULT_URL
    )


def configure(connection: Connection | None = None) -> None:
    context.configure(
        connection=connection,
        url=None if connection is not None else database_url(),
        target_metadata=Base.metadata,
        # Needed for SQLite's ALTER TABLE; harmless elsewhere.
        render_as_batch=True,
        compare_type=True,
        literal_binds=connection is None,
    )


def show_progress() -> None:
    """Alembic's INFO lines ("Running upgrade ...") on stderr, from the command line.

    With the ini's logging sections where it has them (as Alembic's own template does);
    otherwise at INFO for Alembic, unless the program running it set up logging itself.
    """
    if config.config_file_name is not None and config.file_config.has_section("loggers"):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    elif config.cmd_opts is not None and not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)-5.5s [%(name)s] %(message)s")
        logging.getLogger("alembic").setLevel(logging.INFO)


def migrate_on(connection: Connection) -> None:
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def guarded_migrate_on(connection: Connection) -> None:
    with migrate.command_line_guard(connection):
        migrate_on(connection)


def run_from_command_line() -> None:
    show_progress()
    runner = open_sync_runner(database_url(), auto_migrate=False)
    try:
        runner.run_on_any_schema(guarded_migrate_on, write=True)
    except CheckpointStoreError as exc:
        # Alembic prints a CommandError as one line, FAILED: ..., not a traceback.
        raise CommandError(str(exc)) from exc
    finally:
        runner.close()


if context.is_offline_mode():
    configure()
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    migrate_on(connection)
else:
    run_from_command_line()
