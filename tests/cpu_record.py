"""Per-test CPU time, for finding what makes the suite long: with HEARTH_TEST_CPU=FILE, each test
appends one JSON line to FILE (its node id, wall seconds, and CPU seconds of the worker plus the
child processes it waited for: `hearth` subprocesses, engines, servers). Off unless asked.

Wall time under xdist says little on 2 cores (a test waits while its neighbour computes); CPU
time is what the suite's length is made of (CONTRIBUTING.md, "The suite's time")."""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator

import pytest


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    out = os.environ.get("HEARTH_TEST_CPU")
    if not out:
        yield
        return
    cpu, wall = _cpu(), time.monotonic()
    yield
    line = {"test": item.nodeid, "wall_s": round(time.monotonic() - wall, 2), "cpu_s": round(_cpu() - cpu, 2)}
    with open(out, "a", encoding="utf-8") as f:  # one short write per line: workers append side by side
        f.write(json.dumps(line) + "\n")
