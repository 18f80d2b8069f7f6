"""Rendering for the terminal: times, counts, and tables of messages and checkpoints."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal

import typer
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table

from ..dto import Checkpoint, PruneReport, StoredMessage, SummaryPage, TransferReport

# Numbers never shrink; ids shrink (fold) only when nothing else can; text wraps.
ColumnKind = Literal["id", "number", "text"]


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def as_json_text(value: Any) -> str:
    """``value`` as JSON on one line, as a diff shows it: ``"failed"``, ``{"a": 1}``, ``null``."""
    return json.dumps(value, ensure_ascii=False)


def local_time(millis: int | None) -> str:
    if millis is None:
        return "-"
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"


def rows_moved(report: PruneReport | TransferReport) -> str:
    parts = [
        count(report.sessions, "session"),
        count(report.messages, "message"),
        count(report.checkpoints, "checkpoint"),
    ]
    if isinstance(report, TransferReport) and (report.entities or report.facts):
        parts += [count(report.entities, "entity", "entities"), count(report.facts, "fact")]
    return in_words(parts)


def in_words(parts: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(filter(None, [", ".join(parts[:-1]), parts[-1]]))


def short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def checkpoint_ref(checkpoint: Checkpoint) -> dict[str, Any]:
    return checkpoint.model_dump(mode="json", exclude={"node_results", "cycle_state"}) | {
        "nodes": {name: result.status for name, result in checkpoint.node_results.items()}
    }


class Listing:
    """A table for the terminal that gives way in its text columns, never in its numbers.

    Numbers keep their full width, on one line. Ids stay whole on one line while the
    text columns can make room for them; on a terminal too narrow even for that they
    fold onto a second line rather than lose characters. Text wraps, and is cut last.
    """

    def __init__(self, *columns: tuple[str, ColumnKind, str | None]) -> None:
        self.columns = columns
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = [
            max([cell_len(header)] + [cell_len(row[index]) for row in self.rows])
            for index, (header, _, _) in enumerate(self.columns)
        ]
        # Each column is padded by one space on either side; text needs room for a letter.
        rigid = sum(
            width + 2 if kind != "text" else 3 for width, (_, kind, _) in zip(widths, self.columns, strict=True)
        )
        ids_fit = rigid <= options.max_width
        table = Table(box=None, header_style="bold")
        for width, (header, kind, style) in zip(widths, self.columns, strict=True):
            if kind == "number":
                table.add_column(header, justify="right", no_wrap=True, min_width=width, style=style)
            elif kind == "id":
                table.add_column(header, no_wrap=ids_fit, overflow="fold", style=style)
            else:
                table.add_column(header, overflow="fold", style=style)
        for row in self.rows:
            table.add_row(*row)
        yield table


def sessions_table(page: SummaryPage) -> Listing:
    """The sessions of a page; a Memory column (entities/facts) when any of them has some."""
    memory = any(item.entity_count or item.fact_count for item in page)
    columns: list[tuple[str, ColumnKind, str | None]] = [
        ("ID", "id", "cyan"), ("Title", "text", None), ("Workspace", "text", None), ("Msgs", "number", None),
        ("Ckpts", "number", None), ("Step", "number", None), ("Updated", "text", None),
    ]  # fmt: skip
    if memory:
        columns.insert(6, ("Memory", "number", None))
    table = Listing(*columns)
    for item in page:
        session = item.session
        latest = item.latest_checkpoint
        title = escape(session.title or "")
        if session.forked_from_session_id:
            title += " [dim](fork)[/dim]"
        cells = [
            session.id, title, escape(session.workspace_id or ""), str(item.message_count), str(item.checkpoint_count),
            "-" if latest is None else str(latest.step), local_time(session.updated_at),
        ]  # fmt: skip
        if memory:
            cells.insert(6, f"{item.entity_count}/{item.fact_count}")
        table.add_row(*cells)
    return table


def messages_table(found: list[StoredMessage], width: int = 70) -> Listing:
    table = Listing(
        ("ID", "number", "dim"), ("Time", "text", None), ("Role", "text", None), ("Content", "text", None),
        ("Tokens", "number", None),
    )  # fmt: skip
    for message in found:
        content = short(message.content, width)
        if message.tool_calls:
            content = (content + " " if content else "") + "→ " + ", ".join(call.name for call in message.tool_calls)
        if message.tool_results:
            results = "; ".join(short(result.content, width // 2) for result in message.tool_results)
            content = (content + " " if content else "") + "← " + results
        tokens = "" if message.tokens_in is None else f"{message.tokens_in}/{message.tokens_out or 0}"
        table.add_row(str(message.id), local_time(message.created_at), message.role, escape(content), tokens)
    return table


def checkpoints_table(found: list[Checkpoint]) -> Listing:
    table = Listing(
        ("ID", "id", "cyan"), ("Namespace", "text", None), ("Step", "number", None), ("Ver", "number", None),
        ("Source", "text", None), ("Nodes", "text", None), ("Pending", "text", None), ("Saved", "text", None),
    )  # fmt: skip
    for saved in found:
        nodes = ", ".join(f"{name}:{result.status}" for name, result in saved.node_results.items())
        table.add_row(
            saved.id, escape(saved.namespace or '""'), str(saved.step), str(saved.version), escape(saved.source),
            escape(short(nodes, 40)), escape(", ".join(saved.pending_nodes)), local_time(saved.created_at),
        )  # fmt: skip
    return table


def langgraph_table(found: list[dict[str, Any]]) -> Listing:
    """A LangGraph thread's checkpoints (``ops.thread_upkeep.thread_checkpoints`` rows)."""
    table = Listing(
        ("ID", "id", "cyan"), ("Namespace", "text", None), ("Step", "number", None), ("Source", "text", None),
        ("Parent", "id", "dim"), ("Writes", "number", None), ("Saved", "text", None),
    )  # fmt: skip
    for row in found:
        step = "-" if row["step"] is None else str(row["step"])
        table.add_row(
            row["checkpoint_id"], escape(row["checkpoint_ns"] or '""'), step, escape(str(row["source"] or "-")),
            row["parent_checkpoint_id"] or "-", str(row["pending_writes"]), local_time(row["created_at"]),
        )  # fmt: skip
    return table
