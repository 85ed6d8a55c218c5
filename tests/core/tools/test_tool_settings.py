"""settings.json's max_tool_steps: how many rounds of tool calls one answer may make (the window's
tool loop and `hearth ask` without --max-tool-steps)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.fast


def test_the_tool_steps_setting_is_kept_and_a_value_out_of_range_falls_back(tmp_path: Path) -> None:
    from app.core.settings import LoadSettings, SettingsFile

    settings = SettingsFile(tmp_path)
    settings.save(LoadSettings(max_tool_steps=3))
    assert settings.load().max_tool_steps == 3
    settings.path.write_text('{"max_tool_steps": 0}', encoding="utf-8")
    assert settings.load().max_tool_steps == 8 and "max_tool_steps" in (settings.warning or "")
