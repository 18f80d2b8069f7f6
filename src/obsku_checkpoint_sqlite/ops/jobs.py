"""Jobs: work of several transactions, written once as a generator of steps a runner drives."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Step:
    """One transaction of a job: ``operation(conn, *args)``, begun for writing if ``write``.

    With ``transaction=False`` the operation gets the driver's own connection, outside
    any transaction, for statements that cannot run inside one (SQLite's ``VACUUM``).
    """

    operation: Callable[..., Any]
    args: tuple[Any, ...] = ()
    write: bool = False
    transaction: bool = True


Progress = Callable[[int, int | None], None]
"""Called as ``progress(done, total)`` as a job advances: rows, or bytes read (import)."""

Job = Generator[Step, Any, R]
"""A job yields steps, receives each step's result, and returns its own."""
