"""pytest-xdist's file scheduling, mended for a worker that dies mid-run.

Owns: what happens to a crashed worker's files. Must not: change how tests are handed out
while every worker lives (that stays `--dist loadfile`, packaging/bootstrap.sh).

xdist 3.8's `LoadScopeScheduling.remove_node` puts a crashed worker's whole workload back on
the queue, the files it had finished included. Those come back as empty work units, each of
which uses up one of a worker's reschedules without producing a result, so at the end of the run
every worker waits for work that never comes: the run hangs until CI's limit, and its summary
(which test the worker died in) is never printed. That happened in CI (pytest-xdist #1378).
It also leaves the test it died in pending, so the replacement runs it again and dies again
(#1371). Here only the files with tests still to run go back, and the test the worker died in
counts as done: xdist has reported it failed ("worker crashed") already. And a worker runs a
test only once it knows the next one or that there is none, while xdist hands a replacement one
file and says more only when one of its tests ends: a replacement handed a file of one test
waited for ever. Here a worker always holds two tests or has been told that no more will come.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadFileScheduling | None:
    """The scheduler below for `--dist loadfile`; xdist's own for any other mode."""
    if config.getvalue("dist") != "loadfile":
        return None
    # Files are handed out in the collection's order: tests/conftest.py puts the longest first (by
    # their measured times). xdist would otherwise sort them by how many tests each has, and a file
    # of six tests and three minutes (the installers) started after the short ones, alone at the end.
    config.option.loadscopereorder = False
    return CrashSafeFileScheduling(config, log)  # type: ignore[arg-type]


class CrashSafeFileScheduling(LoadFileScheduling):
    """`--dist loadfile`, where a crashed worker's unfinished files alone are handed out again."""

    def remove_node(self, node: WorkerController) -> str | None:
        workload = self.assigned_work.pop(node)
        pending = {scope: unit for scope, unit in workload.items() if not all(unit.values())}
        if not pending:
            return None  # a worker that finished its work and shut down
        unit = next(iter(pending.values()))
        crashed = next(nodeid for nodeid, done in unit.items() if not done)
        unit[crashed] = True  # reported as failed by xdist; running it again would only crash again
        self.workqueue.update({s: u for s, u in pending.items() if not all(u.values())})
        for other in self.assigned_work:
            self._reschedule(other)
        return crashed

    def _reschedule(self, node: WorkerController) -> None:
        if node.shutting_down:
            return
        work = self.assigned_work[node]
        if self.workqueue and self._pending_of(work) <= 2:  # xdist's pace: one more file when low
            self._assign_work_unit(node)
        while self.workqueue and self._pending_of(work) < 2:  # a worker runs a test once it knows the next
            self._assign_work_unit(node)
        if not self.workqueue:
            node.shutdown()  # it has its last work: it may run its last test now
