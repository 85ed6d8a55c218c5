"""A real OpenAI-compatible server for remote-mode tests: llama-cpp-python's own server
(`python -m llama_cpp.server`) serving the bundled model on 127.0.0.1, as a subprocess.

It stands in for "a bigger box on the LAN running llama-server or vLLM". It is never a fake:
tests that need scripted faults use tests/sse_server.py instead.

What this server sends (llama-cpp-python 0.3.36, observed; see tests/harness/test_llama_server.py):
- POST /v1/chat/completions with "stream": true answers 200, text/event-stream, chunked;
  frames are `data: {json}\\n\\n` (json.dumps defaults: ", " separators, non-ASCII escaped);
  the first delta is role-only, each next one carries "content", then one chunk with an empty
  delta and finish_reason "stop" or "length", then `data: [DONE]`. No usage chunk, even with
  stream_options.include_usage. Keep-alive comments `: ping - <time>` every 15 s.
- A prompt longer than the context: 400 JSON error when not streaming; when streaming, a 200
  with an empty body (no data frame, no [DONE]) — a client must treat that as a failure.
- A wrong or missing API key: 401 {"detail": "Invalid API key"}.
- A second request while one streams interrupts the first (interrupt_requests defaults to
  true): the first ends with `data: [DONE]` but never gets a chunk with a finish_reason.

Fixtures are defined here and imported by tests/conftest.py (pytest finds fixtures only in
conftest files and test modules).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest

API_KEY = "hearth-test-key"  # for the keyed fixture; any string works
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0  # SIGTERM lets uvicorn finish open streams; past this, SIGKILL


class LlamaServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


class LlamaServer:
    """`with LlamaServer(model_path) as s:` starts the server on a free port and returns once
    it answers GET /v1/models; on exit it stops the process and closes its log."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 2048,
        api_key: str | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout: float = READY_TIMEOUT_S,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.api_key = api_key
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.base_url = ""  # "http://127.0.0.1:PORT/v1", set on __enter__
        self.model = ""  # the id /v1/models reports (the model path, unless --model_alias)
        self.startup_s = 0.0  # process start to first good answer from /v1/models
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        # A port picked here could be taken before the server binds it; retry then.
        for _ in range(3):
            port = _free_port()
            try:
                self._start(port)
                return self
            except LlamaServerError as e:
                self._stop()
                if "address already in use" not in str(e).lower():
                    raise
        raise LlamaServerError("no free port after 3 tries")

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def headers(self) -> dict[str, str]:
        """The headers an authorised client sends."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log_tail(self, n: int = 4000) -> str:
        """The last n characters of the server's stdout+stderr (llama.cpp and uvicorn logs)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - n))
        return self._log.read().decode("utf-8", "replace")

    def _start(self, port: int) -> None:
        cmd = [
            sys.executable,
            str(Path(__file__).with_name("with_backends.py")),
            "llama_cpp.server",
            "--model",
            str(self.model_path),
        ]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(self.n_ctx)]
        # One thread: on a 2-core machine the test process and a local engine are neighbours,
        # and llama.cpp's spin-waiting threads lose badly to oversubscription
        # (docs/architecture.md#the-environments-traps).
        cmd += ["--n_threads", "1"]
        if self.api_key is not None:
            cmd += ["--api_key", self.api_key]
        cmd += self.extra_args
        # A file, not a pipe: nobody reads the log while tests run, and a full pipe would
        # block the server mid-request. Unlinked at once; closed (and gone) on stop.
        self._log = tempfile.TemporaryFile(prefix="llama-server-")  # noqa: SIM115 - closed in stop()
        started = time.monotonic()
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=_quiet_env()
        )
        self.base_url = f"http://127.0.0.1:{port}/v1"
        deadline = started + self.ready_timeout
        while True:
            if self._proc.poll() is not None:
                raise LlamaServerError(
                    f"llama_cpp.server exited with {self._proc.returncode} before it was ready:\n{self.log_tail()}"
                )
            models = self._get_models()
            if models is not None:
                self.model = models["data"][0]["id"]
                self.startup_s = time.monotonic() - started
                return
            if time.monotonic() > deadline:
                raise LlamaServerError(
                    f"llama_cpp.server not ready after {self.ready_timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _get_models(self) -> dict | None:
        req = urllib.request.Request(f"{self.base_url}/models", headers=self.headers())
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            with e:  # listening but refusing: waiting would not help (a 401 means a wrong key)
                raise LlamaServerError(f"GET /v1/models answered {e.code}: {e.read()[:500]!r}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None  # not listening yet: it loads the model before it binds the port

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()  # an open stream can hold uvicorn's graceful shutdown
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quiet_env() -> dict[str, str]:
    env = dict(os.environ)
    # Spin-waiting OpenMP threads would burn the second core while the server idles
    # between requests, slowing the test process (docs/architecture.md#the-environments-traps).
    env.setdefault("OMP_WAIT_POLICY", "passive")
    env["PYTHONUNBUFFERED"] = "1"  # the log is read when start-up fails: flush as written
    return env


@pytest.fixture(scope="session")
def llama_server(model_path: Path) -> Iterator[LlamaServer]:
    """The bundled model behind an OpenAI-compatible API, no key; shared by the session."""
    with LlamaServer(model_path) as server:
        yield server


@pytest.fixture(scope="session")
def llama_server_keyed(model_path: Path) -> Iterator[LlamaServer]:
    """The same, requiring `Authorization: Bearer API_KEY`."""
    with LlamaServer(model_path, api_key=API_KEY) as server:
        yield server
