"""A real `hearth serve` process for the tests and benchmarks that need one: started as a person
would start it (a free port on 127.0.0.1, a data dir of its own, the token in the environment),
waited for until it answers, stopped at the end; and `hearth(...)`, one CLI run beside it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

__all__ = ["LOCAL", "QUEUE", "TOKEN", "Served", "free_port", "hearth"]

TOKEN = "hearth-test-serve-token-0123456789"
LOCAL = "local/smollm2-135m-instruct-q4_1"
QUEUE = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, data_dir: Path, *extra: str, token: str = TOKEN, env: dict[str, str] | None = None) -> None:
        """`token`: what requests send; `env` is added to the server's environment (an empty
        HEARTH_SERVE_TOKEN leaves the server to find its own token)."""
        self.data_dir, self.token = data_dir, token
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "HEARTH_SERVE_TOKEN": TOKEN,
            "OMP_WAIT_POLICY": "passive",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.log = open(data_dir.parent / f"serve-{self.port}.log", "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--queue",
                str(QUEUE),
                *extra,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(f"{self.base}/v1/models", headers=self.auth(), timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"hearth serve did not start: {self.output()}")

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=key or self.token, max_retries=0, timeout=120)

    def metrics(self) -> dict:  # type: ignore[type-arg]
        return httpx.get(f"{self.base}/metrics", headers=self.auth(), timeout=10).json()

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def wait_for_output(self, text: str, timeout: float = 30) -> str:
        """The output once it holds `text`: the line that says where it serves (and how the token is
        kept) is printed once the server listens, so a request may be answered before it is written."""
        deadline = time.monotonic() + timeout
        while text not in (seen := self.output()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return seen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def hearth(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
