"""LangGraph's own checkpointer conformance suite, against both savers on every backend.

``langgraph-checkpoint-conformance`` detects what a saver implements and runs its tests
for each capability: the five base ones (put, put_writes, get_tuple, list,
delete_thread) and the three extended ones (delete_for_runs, copy_thread, prune).
Every one must be detected and pass; each run prints the suite's own report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from obsku_checkpoint_sqlite.langgraph import AsyncObskuSaver, ObskuSaver
from tests._langgraph import BACKENDS, fresh_database


@pytest.mark.parametrize("saver_class", [ObskuSaver, AsyncObskuSaver], ids=["ObskuSaver", "AsyncObskuSaver"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_conformance_suite_passes_every_capability(
    backend: str, saver_class: type, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fresh_database(backend, tmp_path) as url:

        async def saver() -> AsyncIterator[BaseCheckpointSaver[str]]:
            if saver_class is AsyncObskuSaver:
                async with AsyncObskuSaver.from_conn_string(url) as opened:
                    yield opened
            else:
                with ObskuSaver.from_conn_string(url) as blocking:
                    yield blocking

        registered = checkpointer_test(name=f"{saver_class.__name__} on {backend}")(saver)
        report = await validate(registered)

    with capsys.disabled():
        report.print_report()
    results = report.results
    assert {name for name, result in results.items() if result.detected} == {c.value for c in ALL_CAPABILITIES}
    failures = [failure for result in results.values() for failure in result.failures]
    assert failures == []
    assert report.conformance_level() == "FULL"
    assert sum(result.tests_passed for result in results.values()) == 81
