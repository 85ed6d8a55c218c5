"""llama.cpp's own decode speed for `hearth bench overhead`: its `llama-bench`, built once from the
source Hearth's wheel is built from (packaging/llama/build_bench.py), run on the wheel's own CPU
modules.

Owns: finding or building the executable (the build's progress passes through to stderr), running
`llama-bench -p 0 -n N -t T -r 1 -o json` and reading its tokens/s. Flash attention is left to
llama-bench's default, automatic, which is Hearth's (engine/flash_attn.py).
Must not: build inside a test (the bench takes the finder as an argument; tests hand in one that
says "not available").
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LlamaBench", "Unavailable", "build_llama_bench", "wheel_lib_dir"]

_SCRIPT = Path(__file__).resolve().parents[2] / "packaging" / "llama" / "build_bench.py"
_UNAVAILABLE = 3  # build_bench.py's exit status for "cannot be built on this machine"


@dataclass(frozen=True)
class Unavailable:
    """llama-bench cannot be used here; `reason` says why, for the report."""

    reason: str


@dataclass(frozen=True)
class LlamaBench:
    exe: Path
    # The installed wheel's lib folder. ggml loads CPU modules from the executable's folder and
    # the working directory; the build holds none, so run from here, the modules Hearth runs.
    lib_dir: Path
    info: dict[str, Any]  # the build's build-info.json

    def decode_tps(self, model: Path, threads: int, tokens: int, depth: int = 0) -> float:
        """llama-bench's tg tokens/s for one run of `tokens` tokens (after its own warm-up), decoded
        after `depth` tokens already in the context (`-d`: tg128 @ d30)."""
        cmd = [str(self.exe), "-m", str(model.resolve()), "-p", "0", "-n", str(tokens), "-t", str(threads)]
        cmd += ["-d", str(depth), "-r", "1", "-o", "json"]
        env = {k: v for k, v in os.environ.items() if k != "GGML_BACKEND_PATH"}
        proc = subprocess.run(
            cmd, cwd=self.lib_dir, env=env, capture_output=True, text=True, timeout=120 + tokens, check=False
        )
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"{self.exe} failed (exit {proc.returncode}): {' / '.join(tail)}")
        results = json.loads(proc.stdout)
        tg = [
            r for r in results if r.get("n_gen") == tokens and r.get("n_prompt") == 0 and r.get("n_depth", 0) == depth
        ]
        if not tg:
            raise RuntimeError(f"{self.exe} printed no tg{tokens} result: {proc.stdout[:200]!r}")
        return float(tg[0]["avg_ts"])


def wheel_lib_dir() -> Path | None:
    """The installed llama_cpp's lib folder, found without importing it (it loads native code)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "lib"


def build_llama_bench(say: Callable[[str], None]) -> LlamaBench | Unavailable:
    """The cached llama-bench, built first if needed (minutes, once per build key)."""
    lib_dir = wheel_lib_dir()
    if lib_dir is None or not any(lib_dir.glob("*ggml-cpu*")):
        return Unavailable("the installed llama-cpp-python has no CPU modules (not Hearth's build)")
    if not _SCRIPT.exists():
        return Unavailable(f"llama-bench is built from a source checkout ({_SCRIPT.name}); this install has none")
    folder = subprocess.run(
        [sys.executable, str(_SCRIPT), "--key"], capture_output=True, text=True, check=False
    ).stdout.strip()
    exe = Path(folder) / ("llama-bench.exe" if sys.platform == "win32" else "llama-bench")
    if not exe.exists():
        say(f"building llama.cpp's llama-bench once into {folder} (minutes; cached after, progress below)")
    proc = subprocess.Popen([sys.executable, str(_SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    last = ""
    for line in proc.stderr:  # the build's progress, passed on as it comes
        print(line, end="", file=sys.stderr, flush=True)
        last = line.strip() or last
    out = proc.stdout.read().strip()
    if proc.wait() != 0:
        why = "cannot be built here" if proc.returncode == _UNAVAILABLE else "could not be built"
        return Unavailable(f"llama-bench {why}: {last.removeprefix('hearth-llama-bench-build: ')}")
    exe = Path(out)
    try:
        info = json.loads((exe.parent / "build-info.json").read_text())
    except (OSError, ValueError):
        info = {}
    return LlamaBench(exe=exe, lib_dir=lib_dir, info=info)
