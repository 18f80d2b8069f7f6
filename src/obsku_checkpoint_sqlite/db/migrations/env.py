"""Alembic environment for the checkpoint store's schema.

The store passes a live connection in ``config.attributes["connection"]`` and runs
inside its own transaction. From the command line the URL comes from ``-x url=...``,
else ``OBSKU_CHECKPOINT_URL``, else ``sqlite:///./checkpoints.db``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from obsku_checkpoint_sqlite.runtime.engines import create_sync_engine
from obsku_checkpoint_sqlite.runtime.urls import DEFAULT_URL, URL_ENVIRONMENT_VARIABLE
from obsku_checkpoint_sqlite.db.models import Base

config = context.config


def database_url() -> str:
    return context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        URL_ENVIRONMENT_VARIABLE, DEFAULT_URL
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


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_sync_engine(database_url())
    try:
        with engine.connect() as connection:
            configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    configure()
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
