"""Answer marks: what indexing in another process reads to yield to an answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.documents import answering
from app.core.documents.answering import AnswerMark, answering_elsewhere, wait_while_answering


def _other_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_live_process_answering_is_seen_and_its_own_mark_is_not(tmp_path: Path) -> None:
    mine = AnswerMark(tmp_path)
    mine.set(True)
    assert not answering_elsewhere(tmp_path)  # its own answer does not hold up its own indexing
    other = _other_process()
    try:
        (tmp_path / "answering" / str(other.pid)).touch()
        assert answering_elsewhere(tmp_path)
    finally:
        other.kill()
        other.wait()
    assert not answering_elsewhere(tmp_path)  # the mark of a process that died is removed
    assert not (tmp_path / "answering" / str(other.pid)).exists()
    mine.set(False)
    assert not (tmp_path / "answering" / str(os.getpid())).exists()


def test_no_mark_folder_and_stray_names_are_nothing(tmp_path: Path) -> None:
    assert not answering_elsewhere(tmp_path)
    (tmp_path / "answering").mkdir()
    (tmp_path / "answering" / "not-a-pid").touch()
    assert not answering_elsewhere(tmp_path)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="needs a folder the user cannot write")
def test_a_read_only_data_folder_never_fails_an_answer(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        mark = AnswerMark(tmp_path)
        mark.set(True)  # best effort: nothing raised
        mark.set(False)
    finally:
        tmp_path.chmod(0o700)


def test_waiting_ends_when_the_answer_ends_and_never_waits_forever(tmp_path: Path, monkeypatch) -> None:
    other = _other_process()
    mark = tmp_path / "answering" / str(other.pid)
    try:
        mark.parent.mkdir()
        mark.touch()

        async def answer_ends_soon() -> float:
            began = time.monotonic()
            asyncio.get_running_loop().call_later(0.3, mark.unlink)
            await wait_while_answering(tmp_path)
            return time.monotonic() - began

        assert 0.25 < asyncio.run(answer_ends_soon()) < 5
        mark.touch()
        monkeypatch.setattr(answering, "_LONGEST_WAIT_S", 0.2)  # an answer that never ends

        async def bounded() -> float:
            began = time.monotonic()
            await wait_while_answering(tmp_path)
            return time.monotonic() - began

        assert asyncio.run(bounded()) < 5
    finally:
        other.kill()
        other.wait()
