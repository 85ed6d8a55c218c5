"""The extraction child's life: one child for many files, from any thread, gone after close()
and gone when the process that started it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from processes import gone, wait_gone

from app.core.documents.extract import Extracted, Extractor
from tests.core.documents.corpus import docx_file, pdf

_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_one_child_reads_many_files_from_many_threads_and_close_ends_it(tmp_path: Path) -> None:
    files = [pdf(tmp_path / f"p{i}.pdf", [f"pdf number {i}"]) for i in range(6)]
    files += [docx_file(tmp_path / f"d{i}.docx", [("p", f"docx number {i}")]) for i in range(6)]
    with Extractor() as ex:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(ex.extract, files))
        pid = ex.child_pid
        for path, result in zip(files, results):
            kind = "pdf" if path.suffix == ".pdf" else "docx"
            assert isinstance(result, Extracted) and f"{kind} number {path.stem[1:]}" in result.text
        assert pid is not None
    assert ex.child_pid is None and not wait_gone([pid], 2.0)
    closed = ex.extract(files[0])
    assert not isinstance(closed, Extracted) and "shut down" in closed.message


@pytest.mark.slow
def test_the_child_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    """Linux counts the thread that started a process as its parent (PR_SET_PDEATHSIG): the child
    is started from a lasting thread, so a worker thread ending does not kill it."""
    one = pdf(tmp_path / "one.pdf", ["one"])
    with Extractor() as ex:
        worker = threading.Thread(target=ex.extract, args=(one,))
        worker.start()
        worker.join()
        pid = ex.child_pid
        time.sleep(0.1)
        assert pid is not None and ex.child_pid == pid
        assert isinstance(ex.extract(one), Extracted) and ex.child_pid == pid


@pytest.mark.slow
def test_the_child_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    one = pdf(tmp_path / "one.pdf", ["one"])
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from app.core.documents.extract import Extractor

        if __name__ == "__main__":
            ex = Extractor()
            ex.extract(Path({str(one)!r}))
            print(ex.child_pid, flush=True)
            time.sleep(60)
        """
    )
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen(
        [sys.executable, str(tmp_path / "parent.py")],
        cwd=_ROOT,
        env={**os.environ, "PYTHONPATH": str(_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not gone(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        assert not wait_gone([child], 3.0), "the extraction child outlived its killed parent"
    finally:
        parent.kill()
        parent.wait(5)
        if parent.stdout is not None:
            parent.stdout.close()
