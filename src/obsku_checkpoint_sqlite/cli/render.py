"""Rendering for the terminal: times, counts, and tables of messages and checkpoints."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from ..dto import Checkpoint, PruneReport, StoredMessage, TransferReport


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def local_time(millis: int | None) -> str:
    if millis is None:
        return "-"
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def rows_moved(report: PruneReport | TransferReport) -> str:
    return (
        f"{count(report.sessions, 'session')}, {count(report.messages, 'message')} "
        f"and {count(report.checkpoints, 'checkpoint')}"
    )


def short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def checkpoint_ref(checkpoint: Checkpoint) -> dict[str, Any]:
    return checkpoint.model_dump(mode="json", exclude={"node_results", "cycle_state"}) | {
        "nodes": {name: result.status for name, result in checkpoint.node_results.items()}
    }


def messages_table(found: list[StoredMessage], width: int = 70) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("ID", justify="right", style="dim")
    table.add_column("Time", no_wrap=True)
    table.add_column("Role")
    table.add_column("Content")
    table.add_column("Tokens", justify="right")
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


def checkpoints_table(found: list[Checkpoint]) -> Table:
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
            escape(short(nodes, 40)), escape(", ".join(saved.pending_nodes)), local_time(saved.created_at),
        )  # fmt: skip
    return table
