"""The engine in a thread (engine/engine_thread.py: `hearth ask` attached to another Hearth's
engine) never ends the process it lives in: losing its pipes there is not the app dying."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a process that waits out the engine's grace

_ROOT = Path(__file__).resolve().parents[2]


def test_an_engine_thread_whose_pipe_closes_leaves_its_process_running() -> None:
    # An engine process whose app has gone ends itself 3 s later (engine.actor `_abandon`); the
    # same actor in a thread did so too and took the whole process down with exit code 0.
    script = textwrap.dedent(
        """
        import time
        from engine.engine_thread import EngineThread

        engine = EngineThread(lambda event: None)
        engine.start()
        engine._commands.close()  # the pipe is gone without a Shutdown
        time.sleep(4.0)  # past the engine's 3 s grace
        print("still here", flush=True)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=_ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "still here", (done.returncode, done.stderr[-2000:])
    assert done.returncode == 0
