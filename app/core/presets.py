"""Named chat settings: a few built in, a person's own kept in `<data dir>/presets.json`.

Owns the built-in presets, which preset new chats start from, and the file: written
atomically (a crash mid-write leaves the old file), read tolerantly (a damaged preset falls
back field by field, a damaged file leaves the built-ins; `warning` says what happened,
nothing is raised at start-up). A file that could not be read is moved aside, not
overwritten, the first time something is saved, so nothing a person wrote is lost.

No Qt: the window and `hearth ask --preset` share it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.chat_settings import ChatSettings
from app.core.errors import InputError

__all__ = ["BUILTIN_PRESETS", "DEFAULT_PRESET", "MAX_PRESET_NAME", "Preset", "Presets", "PresetsFile"]

DEFAULT_PRESET = "Balanced"
MAX_PRESET_NAME = 60


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    settings: ChatSettings
    builtin: bool = False


BUILTIN_PRESETS: tuple[Preset, ...] = (
    Preset(DEFAULT_PRESET, ChatSettings(), builtin=True),
    Preset("Precise", ChatSettings(temperature=0.2, top_p=0.9, repeat_penalty=1.1), builtin=True),
    Preset("Creative", ChatSettings(temperature=1.0, top_p=0.98, repeat_penalty=1.15, max_tokens=1024), builtin=True),
    # Code repeats itself by nature (names, brackets): a repeat penalty would garble it.
    Preset(
        "Code",
        ChatSettings(
            system_prompt="You are a careful programming assistant. Answer with correct, "
            "complete code in fenced blocks, then explain it briefly.",
            temperature=0.2,
            top_p=0.9,
            repeat_penalty=1.0,
            max_tokens=1024,
        ),
        builtin=True,
    ),
)


@dataclass(frozen=True, slots=True)
class Presets:
    """Every preset (built-ins first, then a person's own, by name) and the default's name."""

    presets: tuple[Preset, ...] = BUILTIN_PRESETS
    default_name: str = DEFAULT_PRESET

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.presets]

    @property
    def default(self) -> ChatSettings:
        """What a new chat starts from."""
        return self.get(self.default_name).settings

    def find(self, name: str) -> Preset | None:
        key = name.strip().casefold()
        return next((p for p in self.presets if p.name.casefold() == key), None)

    def get(self, name: str) -> Preset:
        found = self.find(name)
        if found is None:
            raise InputError("no_such_preset", f"There is no preset called “{name}”. Presets: {', '.join(self.names)}.")
        return found

    def matching(self, settings: ChatSettings) -> str | None:
        """The name of a preset with exactly these settings (the default's first), if any."""
        ordered = sorted(self.presets, key=lambda p: p.name != self.default_name)
        return next((p.name for p in ordered if p.settings == settings), None)


def check_name(name: str) -> str:
    """A preset's name as typed, trimmed, or InputError saying why it cannot be one."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InputError("bad_preset_name", "Give the preset a name.")
    if len(cleaned) > MAX_PRESET_NAME:
        raise InputError("bad_preset_name", f"A preset's name can be at most {MAX_PRESET_NAME} characters.")
    if any(not ch.isprintable() for ch in cleaned):
        raise InputError("bad_preset_name", "A preset's name cannot hold control characters.")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("bad_preset_name", "The preset's name is not valid text (broken UTF-8).") from None
    if any(p.name.casefold() == cleaned.casefold() for p in BUILTIN_PRESETS):
        raise InputError("bad_preset_name", f"“{cleaned}” is a built-in preset; choose another name.")
    return cleaned


class PresetsFile:
    """`<data dir>/presets.json`: {"default": NAME, "presets": {NAME: {settings...}}}."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "presets.json"
        self.warning: str | None = None  # set by load() when the file could not be used as it is
        self._unreadable = False  # the file is there but is not ours to rewrite as it is

    def load(self) -> Presets:
        self.warning = None
        self._unreadable = False
        try:
            raw = json.loads(self.path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return Presets()
        except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
            self._unreadable = True
            self.warning = f"{self.path} could not be read ({e}); only the built-in presets are offered."
            return Presets()
        if not isinstance(raw, dict):
            self._unreadable = True
            self.warning = f"{self.path} is not a presets file; only the built-in presets are offered."
            return Presets()
        own, problems = _own_presets(raw.get("presets"))
        presets = Presets((*BUILTIN_PRESETS, *sorted(own, key=lambda p: p.name.casefold())))
        default = raw.get("default", DEFAULT_PRESET)
        found = presets.find(default) if isinstance(default, str) else None
        if found is None:
            problems.append(f"the default preset {default!r} does not exist ({DEFAULT_PRESET} is used)")
        presets = Presets(presets.presets, found.name if found else DEFAULT_PRESET)
        if problems:
            self.warning = f"Some presets in {self.path} were not understood: {'; '.join(problems)}."
        return presets

    # -- changes: each reads the file again, so two windows (or a window and the CLI) add up
    def save_preset(self, name: str, settings: ChatSettings) -> Presets:
        """Add or replace a preset of one's own. InputError for a bad name or bad settings."""
        name = check_name(name)
        settings.checked()
        current = self.load()
        own = [p for p in current.presets if not p.builtin and p.name.casefold() != name.casefold()]
        return self._write(
            Presets(
                (*BUILTIN_PRESETS, *sorted([*own, Preset(name, settings)], key=lambda p: p.name.casefold())),
                current.default_name,
            )
        )

    def delete_preset(self, name: str) -> Presets:
        current = self.load()
        preset = current.get(name)
        if preset.builtin:
            raise InputError("builtin_preset", f"“{preset.name}” is built in and cannot be deleted.")
        kept = tuple(p for p in current.presets if p is not preset)
        default = current.default_name if current.default_name != preset.name else DEFAULT_PRESET
        return self._write(Presets(kept, default))

    def set_default(self, name: str) -> Presets:
        """New chats start from `name` from now on."""
        current = self.load()
        return self._write(Presets(current.presets, current.get(name).name))

    def _write(self, presets: Presets) -> Presets:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._unreadable and self.path.exists():
            kept = self.path.with_name(f"presets.unreadable-{time.strftime('%Y%m%d-%H%M%S')}.json")
            os.replace(self.path, kept)
            self.warning = f"The presets file could not be read; it was kept as {kept}."
            self._unreadable = False
        data = {
            "default": presets.default_name,
            "presets": {p.name: p.settings.to_dict() for p in presets.presets if not p.builtin},
        }
        tmp = self.path.with_suffix(".json.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        return presets


def _own_presets(raw: object) -> tuple[list[Preset], list[str]]:
    """A person's presets from the file, each field checked; and what was wrong."""
    if raw is None:
        return [], []
    if not isinstance(raw, dict):
        return [], ["'presets' is not a table of named presets"]
    out: list[Preset] = []
    problems: list[str] = []
    for name, values in raw.items():
        try:
            cleaned = check_name(str(name))
        except InputError as e:
            problems.append(f"{str(name)[:MAX_PRESET_NAME]!r} skipped: {e.message}")
            continue
        if any(p.name.casefold() == cleaned.casefold() for p in out):
            problems.append(f"{cleaned!r} appears twice (the first is used)")
            continue
        settings, bad = ChatSettings.from_dict(values)
        if bad:
            problems.append(f"{cleaned!r}: {', '.join(bad)} (defaults used for those)")
        out.append(Preset(cleaned, settings))
    return out, problems
