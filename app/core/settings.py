"""A person's settings: which model the window loads and how (context, threads, GPU, flash attention),
and whether its engine is shared with this user's other Hearth processes (issue 26).

Kept in `<data dir>/settings.json`, written atomically (a crash mid-write leaves the old
file). A damaged or half-understood file falls back to defaults field by field, and the
problem is reported, never raised at start-up. No Qt.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CONTEXT", "LoadSettings", "SettingsFile"]

_VERSION = 2  # 2: flash_attn may be null (automatic)

# 4,096 tokens: long enough for real conversations, small enough that the KV cache of a
# 7B model stays near 0.5 GB. People raise it per model in the manager.
DEFAULT_CONTEXT = 4096
MAX_CONTEXT = 1 << 20


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """How to load a model. None means "Hearth decides" (threads per answer from the machine's
    load, GPU layers from the fit)."""

    model: str | None = None  # a library model id or a path; None: the bundled model
    n_ctx: int = DEFAULT_CONTEXT
    n_threads: int | None = None
    n_gpu_layers: int | None = None
    # None: automatic (llama.cpp turns it on where the device runs it: about a tenth less time per token on
    # a CPU); off by default because with it a greedy answer can change with what the KV cache already
    # holds (an engine shared with another front-end answered differently from a private one).
    flash_attn: bool | None = False
    # One engine per machine: the window, `hearth serve` and `hearth ask` host or attach to one
    # engine; False: each loads its own copy, as --no-share does for one command.
    share_engine: bool = True
    # Rounds of tool calls one answer may make (app.core.tool_loop); past them the model answers
    # without tools. `hearth ask --max-tool-steps` overrides it for one answer.
    max_tool_steps: int = 8

    def problems(self) -> list[str]:
        """What is wrong with these values, in words for a person (empty when all is well)."""
        out = []
        if not 256 <= self.n_ctx <= MAX_CONTEXT:
            out.append(f"Context length must be between 256 and {MAX_CONTEXT:,} tokens (got {self.n_ctx:,}).")
        if self.n_threads is not None and not 1 <= self.n_threads <= 512:
            out.append(f"Threads must be between 1 and 512 (got {self.n_threads}).")
        if self.n_gpu_layers is not None and not 0 <= self.n_gpu_layers <= 1000:
            out.append(f"GPU layers must be 0 or more (got {self.n_gpu_layers}).")
        if not 1 <= self.max_tool_steps <= 100:
            out.append(f"Tool steps per answer must be between 1 and 100 (got {self.max_tool_steps}).")
        return out


class SettingsFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "settings.json"
        self.warning: str | None = None  # set by load() when the file could not be used as it is

    def load(self) -> LoadSettings:
        self.warning = None
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return LoadSettings()
        except (OSError, ValueError) as e:
            self.warning = f"{self.path} could not be read ({e}); using default settings."
            return LoadSettings()
        if not isinstance(raw, dict):
            self.warning = f"{self.path} is not a settings object; using default settings."
            return LoadSettings()
        values: dict[str, Any] = {}
        bad: list[str] = []
        for f in dataclasses.fields(LoadSettings):
            if f.name in raw:
                value = raw[f.name]
                one = LoadSettings(**{f.name: value}) if _right_type(f.name, value) else None
                if one is not None and not one.problems():
                    values[f.name] = value
                else:
                    bad.append(f.name)
        if bad:
            self.warning = (
                f"Some settings in {self.path} were not understood ({', '.join(bad)}); defaults used for those."
            )
        return LoadSettings(**values)

    def save(self, settings: LoadSettings) -> None:
        problems = settings.problems()
        if problems:
            raise ValueError(" ".join(problems))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump({"version": _VERSION, **dataclasses.asdict(settings)}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _right_type(name: str, value: object) -> bool:
    if name == "flash_attn":
        return value is None or isinstance(value, bool)
    if name == "share_engine":
        return isinstance(value, bool)
    if name == "model":
        return value is None or isinstance(value, str)
    if name in ("n_threads", "n_gpu_layers") and value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool)
