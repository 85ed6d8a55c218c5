"""settings.json: flash attention off, on or automatic, and files written before automatic existed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core.settings import LoadSettings, SettingsFile
from engine.flash_attn import flash_attention


def _write(data_dir: Path, values: dict[str, object]) -> SettingsFile:
    (data_dir / "settings.json").write_text(json.dumps(values), encoding="utf-8")
    return SettingsFile(data_dir)


def test_flash_attention_is_off_by_default_and_automatic_is_saved_as_null(tmp_path: Path) -> None:
    assert LoadSettings().flash_attn is False
    f = SettingsFile(tmp_path)
    f.save(LoadSettings())
    assert json.loads(f.path.read_text())["version"] == 2 and f.load() == LoadSettings() and f.warning is None
    f.save(LoadSettings(flash_attn=None))
    assert json.loads(f.path.read_text())["flash_attn"] is None and f.load().flash_attn is None


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ({"flash_attn": False}, False),  # a file from before version 2
        ({"flash_attn": True}, True),
        ({"version": 2, "flash_attn": None}, None),
    ],
    ids=["old-off", "old-on", "auto"],
)
def test_each_flash_attention_choice_reads_back(tmp_path: Path, written: dict[str, object], read: bool | None) -> None:
    f = _write(tmp_path, {"n_ctx": 2048, **written})
    settings = f.load()
    assert settings.flash_attn is read and settings.n_ctx == 2048 and f.warning is None


def test_a_flash_attention_value_of_another_type_is_reported(tmp_path: Path) -> None:
    f = _write(tmp_path, {"version": 2, "flash_attn": "yes"})
    assert f.load().flash_attn is False
    assert f.warning is not None and "flash_attn" in f.warning


def test_automatic_asks_llama_cpp_for_auto_for_the_one_call_only() -> None:
    module = SimpleNamespace(
        LLAMA_FLASH_ATTN_TYPE_DISABLED=0, LLAMA_FLASH_ATTN_TYPE_ENABLED=1, LLAMA_FLASH_ATTN_TYPE_AUTO=-1
    )
    llama_cpp = SimpleNamespace(llama_cpp=module)
    with flash_attention(llama_cpp, None) as arg:  # type: ignore[arg-type]
        assert arg is False and module.LLAMA_FLASH_ATTN_TYPE_DISABLED == -1  # "off" means auto, here
    assert module.LLAMA_FLASH_ATTN_TYPE_DISABLED == 0
    with pytest.raises(RuntimeError), flash_attention(llama_cpp, None):  # type: ignore[arg-type]
        raise RuntimeError("load failed")
    assert module.LLAMA_FLASH_ATTN_TYPE_DISABLED == 0
    for choice in (True, False):
        with flash_attention(llama_cpp, choice) as arg:  # type: ignore[arg-type]
            assert arg is choice and module.LLAMA_FLASH_ATTN_TYPE_DISABLED == 0
