"""Chat templates that try to take the machine, and engines that outlive their app.

A chat template is a Jinja program inside the model file. The ones issue 22 met: output
repeated until the engine took 24 GB, a 10-billion-character string (19.4 GB), nested loops
that never ended, and the same only from the second message (past the load check, hanging a
`hearth serve` request); plus one C call too big for any size check (only the memory limit
stops it). Each goes through the real engine process, at load and in a later turn, and must
end as bad_template naming the file, within seconds, with the engine's memory bounded. A
guard kills an engine that grows past 2 GB, so that without the limits these tests fail
instead of taking the machine down.

And an engine must end with the process that started it, however that ends: killed while
the engine is stuck (stopped, here), and not when the thread that started it ends.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest
from gguf_corpus import STRING, Layout, enc_kv, enc_str, layout_of, rebuild, write_model
from processes import gone, wait_gone
from serve_process import Served

from engine.client import AsyncEngine, EngineProcess
from engine.commands import ChatMessage, Generate, LoadModel, Measure, Sampling
from engine.errors import ModelLoadError
from engine.events import Failed, Final, Measured
from engine.template_choice import CHATML_TEMPLATE

HOSTILE = {
    "repeated-output": "{% set s='A'*100000 %}{% for i in range(100000) %}{{ s }}{% endfor %}",
    "ten-billion-characters": "{{ 'A' * 10000000000 }}",
    "nested-loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "one-huge-c-call": "{{ 'x'.center(10000000000) }}",
}
GUARD_BYTES = 2 << 30  # an engine past this is killed: the limits failed
PEAK_BYTES = 1 << 30  # what a refused template may take the engine to, at most (the model's ~100 MB included)
SECONDS = 15  # "within seconds rather than forever", on a loaded 2-core machine
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def layout(model_path: Path) -> Layout:
    return layout_of(model_path)


def _with_template(lay: Layout, source: str) -> tuple[bytes, int]:
    return rebuild(lay, replace={"tokenizer.chat_template": enc_kv("tokenizer.chat_template", STRING, enc_str(source))})


def _late(body: str) -> str:
    """The hostile body only once the chat has two messages: the load check sees one."""
    return "{% if messages|length > 1 %}" + body + "{% endif %}" + CHATML_TEMPLATE


class _Guard:
    peak = 0
    killed = False


@contextmanager
def _guarded(pid: int, *, children: bool = False) -> Iterator[_Guard]:
    """The engine's peak memory while the block runs; an engine (or with `children`, any process
    under `pid`) past GUARD_BYTES is killed."""
    guard, done = _Guard(), threading.Event()
    top = psutil.Process(pid)

    def watch() -> None:
        while not done.wait(0.02):
            try:
                procs = top.children(recursive=True) if children else [top]
            except psutil.Error:
                return
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                guard.peak = max(guard.peak, rss)
                if rss > GUARD_BYTES:
                    guard.killed = True
                    proc.kill()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield guard
    finally:
        done.set()
        watcher.join()
        try:  # the kernel's own peak, which polling can miss
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    guard.peak = max(guard.peak, int(line.split()[1]) * 1024)
        except OSError:
            pass


def _user(text: str) -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", text),)


async def _collect(stream) -> list[object]:  # type: ignore[no-untyped-def]
    return [ev async for ev in stream]


def _says_what_to_do(message: str, file_name: str) -> None:
    assert file_name in message and "hearth models template" in message, message


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_template_is_refused_at_load_with_the_engine_kept_small(
    kind: str, layout: Layout, tmp_path: Path
) -> None:
    path = write_model(tmp_path / f"{kind}.gguf", *_with_template(layout, HOSTILE[kind]))

    async def main() -> tuple[ModelLoadError, float, _Guard, int | None, int | None]:
        engine = AsyncEngine()
        engine.start()
        pid = engine.pid
        assert pid is not None
        try:
            with _guarded(pid) as guard:
                t0 = time.monotonic()
                with pytest.raises(ModelLoadError) as err:
                    await asyncio.wait_for(engine.load(LoadModel(str(path), n_ctx=512)), SECONDS)
                elapsed = time.monotonic() - t0
            return err.value, elapsed, guard, pid, engine.pid
        finally:
            engine.close()

    error, elapsed, guard, pid_before, pid_after = asyncio.run(main())
    assert not guard.killed, f"the engine grew past {GUARD_BYTES >> 20} MB"
    assert error.code == "bad_template", error.message
    _says_what_to_do(error.message, f"{kind}.gguf")
    assert elapsed < SECONDS
    assert guard.peak < PEAK_BYTES, f"{guard.peak >> 20} MB"
    assert pid_after == pid_before  # refused by the engine, not by its death


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_template_hostile_from_the_second_message_fails_that_turn_only(
    kind: str, layout: Layout, tmp_path: Path
) -> None:
    """Past the load check, each turn and each measure (the context meter, rendered on the
    engine's reader thread) is limited too; the next one-message turn answers."""
    path = write_model(tmp_path / f"late-{kind}.gguf", *_with_template(layout, _late(HOSTILE[kind])), source=layout)
    two = (*_user("Hi"), ChatMessage("assistant", "Hello!"), *_user("And now?"))

    async def main() -> tuple[list[object], list[object], Measured, list[object], float, _Guard]:
        engine = AsyncEngine()
        engine.start()
        assert engine.pid is not None
        try:
            with _guarded(engine.pid) as guard:  # from the start: llama-cpp-python once compiled it at load
                await asyncio.wait_for(engine.load(LoadModel(str(path), n_ctx=512)), SECONDS * 4)
                first = await _collect(engine.generate(Generate(1, _user("Hi"), Sampling.greedy(4))))
                t0 = time.monotonic()
                second = await asyncio.wait_for(
                    _collect(engine.generate(Generate(2, two, Sampling.greedy(4)))), SECONDS
                )
                elapsed = time.monotonic() - t0
                measured = await asyncio.wait_for(engine.measure(two, Sampling.greedy(4)), SECONDS)
                third = await _collect(engine.generate(Generate(3, _user("Hi again"), Sampling.greedy(4))))
            return first, second, measured, third, elapsed, guard
        finally:
            engine.close()

    first, second, measured, third, elapsed, guard = asyncio.run(main())
    assert not guard.killed, f"the engine grew past {GUARD_BYTES >> 20} MB"
    assert isinstance(first[-1], Final) and isinstance(third[-1], Final)
    failed = second[-1]
    assert isinstance(failed, Failed) and failed.code == "bad_template", failed
    _says_what_to_do(failed.message, f"late-{kind}.gguf")
    assert measured.error and f"late-{kind}.gguf" in measured.error
    assert elapsed < SECONDS
    assert guard.peak < PEAK_BYTES, f"{guard.peak >> 20} MB"


def test_hearth_serve_answers_a_hostile_second_message_with_an_error(layout: Layout, tmp_path: Path) -> None:
    """The request that hung `hearth serve`: an error naming the file, and the server still answers."""
    path = write_model(
        tmp_path / "late-nested.gguf", *_with_template(layout, _late(HOSTILE["nested-loops"])), source=layout
    )
    with _guarded(os.getpid(), children=True) as guard:
        hostile, elapsed, after = _ask_served(Served(tmp_path / "data", "--model", str(path), "--threads", "1"))
    assert not guard.killed, f"a process grew past {GUARD_BYTES >> 20} MB"
    assert hostile.status_code >= 400, hostile.text
    assert "late-nested.gguf" in hostile.text and "bad_template" in hostile.text, hostile.text
    assert elapsed < SECONDS
    assert after.status_code == 200, after.text


def _ask_served(served: Served) -> tuple[httpx.Response, float, httpx.Response]:
    """A chat whose second message the template cannot render, then a one-message chat."""
    try:
        listed = httpx.get(f"{served.base}/v1/models", headers=served.auth(), timeout=10).json()["data"]
        model = next(m["id"] for m in listed if m["id"].startswith("local/"))

        def ask(messages: list[dict[str, str]]) -> httpx.Response:
            return httpx.post(
                f"{served.base}/v1/chat/completions",
                headers=served.auth(),
                timeout=120,
                json={"model": model, "messages": messages, "max_tokens": 4, "temperature": 0},
            )

        t0 = time.monotonic()
        hostile = ask(
            [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "And now?"},
            ]
        )
        elapsed = time.monotonic() - t0
        after = ask([{"role": "user", "content": "Hi"}])
    finally:
        served.stop()
    return hostile, elapsed, after


# -- an engine ends with its app -------------------------------------------------------------------

_APP = textwrap.dedent("""
    import asyncio, sys
    from engine.client import AsyncEngine
    from engine.commands import Sampling

    async def main():
        engine = AsyncEngine()
        engine.start()
        await engine.measure((), Sampling())  # answered: the engine process runs its main
        print(engine.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


@pytest.mark.skipif(sys.platform != "linux", reason="a stopped engine can only be ended by the kernel (Linux)")
def test_an_engine_stuck_when_its_app_is_killed_ends_with_it() -> None:
    """`hearth ask` killed while its engine was stuck left the engine spinning for good. Stuck
    here is stopped (SIGSTOP): no thread of its own can notice, only the kernel can end it."""
    app = subprocess.Popen(
        [sys.executable, "-c", _APP],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    engine_pid = 0
    try:
        assert app.stdout is not None
        engine_pid = int(app.stdout.readline())
        os.kill(engine_pid, signal.SIGSTOP)
        app.kill()
        app.wait()
        assert not wait_gone([engine_pid], SECONDS), "the engine outlived its app"
    finally:
        app.kill()
        app.wait()
        if app.stdout is not None:
            app.stdout.close()
        if engine_pid and not gone(engine_pid):
            os.kill(engine_pid, signal.SIGKILL)


@pytest.mark.slow
def test_an_engine_outlives_the_thread_that_started_it() -> None:
    """Linux counts the thread that started a process as its parent (PR_SET_PDEATHSIG): an
    engine started from a worker thread must not die when that thread ends."""
    events: queue.Queue[object] = queue.Queue()
    proc = EngineProcess(events.put)

    def start() -> None:  # a worker thread that ends once its engine runs (and has asked to die with its parent)
        proc.start()
        proc.send(Measure(1, ()))
        assert isinstance(events.get(timeout=60), Measured)

    starter = threading.Thread(target=start)
    starter.start()
    starter.join()
    try:
        time.sleep(0.5)
        assert proc.pid is not None and proc.alive and not gone(proc.pid)
    finally:
        proc.stop()
