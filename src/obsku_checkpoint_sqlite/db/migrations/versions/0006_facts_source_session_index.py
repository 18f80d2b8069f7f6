"""An index on ``facts.source_session_id``: a session's facts without reading all facts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Session summaries count each session's facts, a session-filtered export reads them, and
deleting or pruning a session sets their ``source_session_id`` to NULL (as the foreign
key's ON DELETE SET NULL does). Without an index each of these reads the whole table.
The TypeScript package ignores indexes it does not know.

MariaDB and MySQL already index the column: a foreign key needs an index, and InnoDB made
one, named after the constraint, with the table. Another would be a duplicate, so there
the revision renames that one (a change to the catalogue only) and every backend has
``idx_facts_source_session``. InnoDB refuses to drop it while the foreign key needs it,
so the downgrade renames it back.

Each step looks first at what exists, so running the revision again after a failure
part-way (MariaDB commits each DDL statement on its own) completes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "idx_facts_source_session"
TABLE = "facts"
COLUMN = "source_session_id"


def _is_innodb() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def _indexes() -> dict[str, list[str | None]]:
    return {
        index["name"]: list(index["column_names"])
        for index in sa.inspect(op.get_bind()).get_indexes(TABLE)
        if index["name"] and not index["unique"]
    }


def _foreign_key_name() -> str | None:
    for key in sa.inspect(op.get_bind()).get_foreign_keys(TABLE):
        if key["constrained_columns"] == [COLUMN]:
            return key["name"]
    return None


def _rename(old: str, new: str) -> None:
    op.execute(sa.text(f"ALTER TABLE {TABLE} RENAME INDEX `{old}` TO `{new}`"))


def upgrade() -> None:
    indexes = _indexes()
    if NAME in indexes:
        return
    if _is_innodb():
        # The foreign key's own index: named after the constraint, or after the column
        # when the constraint had no name.
        implicit = [name for name, columns in indexes.items() if columns == [COLUMN]]
        if implicit:
            _rename(implicit[0], NAME)
            return
    op.create_index(NAME, TABLE, [COLUMN])


def downgrade() -> None:
    if NAME not in _indexes():
        return
    key = _foreign_key_name() if _is_innodb() else None
    if key is not None:
        _rename(NAME, key)
    else:
        op.drop_index(NAME, table_name=TABLE)
