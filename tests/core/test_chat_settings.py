"""Chat settings and presets without a model: ranges and their messages, reading damaged
values field by field, presets.json round trips and damage, the conversation's other keys."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app.core.chat_settings import CHAT_KEY, ChatSettings
from app.core.errors import InputError
from app.core.presets import BUILTIN_PRESETS, DEFAULT_PRESET, PresetsFile
from store import Store


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"temperature": -0.1}, "temperature", "Temperature must be between 0 and 5 (got -0.1)"),
        ({"temperature": float("nan")}, "temperature", "Temperature must be a number (not nan)"),
        ({"top_p": 0.0}, "top_p", "Top-p must be above 0 and at most 1"),
        ({"top_p": 1.5}, "top_p", "Top-p must be above 0 and at most 1 (got 1.5)"),
        ({"max_tokens": 0}, "max_tokens", "Max tokens must be between 1 and 1,048,576 (got 0)"),
        ({"repeat_penalty": 0.9}, "repeat_penalty", "between 1 and 2 (1.0 turns it off)"),
        ({"context_length": 100}, "context_length", "0 (all of the model's context) or between 256"),
        ({"system_prompt": "x" * 40_000}, "system_prompt", "40,000 characters; the most is 32,000"),
        ({"system_prompt": "bad \udcff byte"}, "system_prompt", "not valid text"),
    ],
    ids=[
        "temp-low",
        "temp-nan",
        "top-p-zero",
        "top-p-high",
        "max-tokens-zero",
        "penalty-low",
        "context-small",
        "prompt-huge",
        "prompt-surrogate",
    ],
)
def test_bad_values_are_refused_with_a_message_naming_the_field(change: dict, field: str, needle: str) -> None:
    bad = ChatSettings().replace(**change)
    problems = bad.problems()
    assert list(problems) == [field] and needle in problems[field], problems
    with pytest.raises(InputError, match=r"must|characters|not valid"):
        bad.checked()


def test_the_context_length_cannot_exceed_the_models() -> None:
    settings = ChatSettings(context_length=8192)
    assert settings.problems() == {}
    problem = settings.problems(model_context=4096)["context_length"]
    assert "more than the model's context (4,096 tokens)" in problem and "load the model" in problem
    assert ChatSettings(context_length=4096).problems(model_context=4096) == {}


def test_to_sampling_carries_every_number_and_keeps_the_seed() -> None:
    s = ChatSettings(temperature=0.3, top_p=0.8, max_tokens=77, repeat_penalty=1.2, context_length=1024)
    sampling = s.to_sampling(seed=5)
    assert (
        sampling.temperature,
        sampling.top_p,
        sampling.max_tokens,
        sampling.repeat_penalty,
        sampling.context_limit,
        sampling.seed,
    ) == (0.3, 0.8, 77, 1.2, 1024, 5)
    assert ChatSettings().to_sampling().repeat_penalty == 1.1  # the mild default for small models


def test_damaged_stored_values_fall_back_one_field_at_a_time() -> None:
    base = ChatSettings(temperature=0.2)
    raw = {
        "system_prompt": 42,
        "temperature": "hot",
        "top_p": 0.5,
        "max_tokens": 512.0,
        "repeat_penalty": True,
        "context_length": 1e400,
        "unknown": 1,
    }
    settings, bad = ChatSettings.from_dict(raw, base=base)
    assert settings == ChatSettings(temperature=0.2, top_p=0.5, max_tokens=512)
    assert sorted(bad) == ["context_length", "repeat_penalty", "system_prompt", "temperature"]
    assert ChatSettings.from_dict("not a dict") == (ChatSettings(), ["all"])
    assert ChatSettings.from_settings({"route": "x"}) == (ChatSettings(), [])  # none saved: no complaint


def test_saving_chat_settings_keeps_the_conversations_route(data_dir: Path) -> None:
    async def body(store: Store) -> dict[str, object]:
        start = await store.begin_turn(None, "hello", "m")
        cid = start.ids.conversation_id
        await store.update_conversation_settings(cid, {"provider": "lan", "model": "big"})
        await store.update_conversation_settings(cid, ChatSettings(system_prompt="Be brief.").to_settings())
        await store.update_conversation_settings(cid, ChatSettings(max_tokens=99).to_settings())
        return await store.conversation_settings(cid)

    with Store.open(data_dir / "h.db") as store:
        saved = asyncio.run(body(store))
    assert saved["provider"] == "lan" and saved["model"] == "big"
    assert ChatSettings.from_settings(saved) == (ChatSettings(max_tokens=99), [])
    assert isinstance(saved[CHAT_KEY], dict)


# -- presets ---------------------------------------------------------------------------------
def test_presets_round_trip_and_the_default_can_be_chosen(data_dir: Path) -> None:
    presets_file = PresetsFile(data_dir)
    fresh = presets_file.load()
    assert fresh.names[:4] == ["Balanced", "Precise", "Creative", "Code"] and fresh.default == ChatSettings()
    mine = ChatSettings(system_prompt="Réponds en français.", temperature=0.4)
    presets_file.save_preset("  My   French ", mine)
    presets_file.set_default("my french")
    again = PresetsFile(data_dir).load()
    assert "My French" in again.names and again.default_name == "My French" and again.default == mine
    assert again.matching(mine) == "My French" and again.matching(ChatSettings(temperature=3.3)) is None
    assert presets_file.warning is None
    after = presets_file.delete_preset("My French")
    assert "My French" not in after.names and after.default_name == DEFAULT_PRESET


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("", "Give the preset a name"),
        ("balanced", "built-in preset"),
        ("x" * 61, "at most 60"),
        ("bell\x07here", "control characters"),
    ],
    ids=["empty", "builtin", "long", "control"],
)
def test_bad_preset_names_are_refused(data_dir: Path, name: str, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        PresetsFile(data_dir).save_preset(name, ChatSettings())
    assert not (data_dir / "presets.json").exists()  # nothing written


def test_builtin_presets_cannot_be_deleted_and_unknown_ones_are_named(data_dir: Path) -> None:
    with pytest.raises(InputError, match="built in"):
        PresetsFile(data_dir).delete_preset("Code")
    with pytest.raises(InputError, match=r"no preset called “Nope”\. Presets: Balanced, Precise"):
        PresetsFile(data_dir).set_default("Nope")


def test_a_damaged_presets_file_falls_back_with_a_message_and_is_kept(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "presets.json"
    path.write_bytes(b'{"default": "Mine", "presets": {"Mine": {"temperature": 9')  # cut short
    presets_file = PresetsFile(data_dir)
    presets = presets_file.load()
    assert presets.names == [p.name for p in BUILTIN_PRESETS] and presets.default_name == DEFAULT_PRESET
    assert presets_file.warning and "could not be read" in presets_file.warning
    presets_file.save_preset("New", ChatSettings(temperature=0.1))  # the damaged file is moved aside
    kept = list(data_dir.glob("presets.unreadable-*.json"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b'{"default": "Mine"')
    assert "New" in PresetsFile(data_dir).load().names


def test_damaged_presets_fall_back_field_by_field(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "presets.json").write_text(
        json.dumps(
            {
                "default": "Gone",
                "presets": {
                    "Warm": {"temperature": 1.2, "top_p": "all"},
                    "Balanced": {},
                    "Cold": [1, 2],
                    "\x01bad": {},
                },
            }
        ),
        encoding="utf-8",
    )
    presets_file = PresetsFile(data_dir)
    presets = presets_file.load()
    assert presets.get("Warm").settings == ChatSettings(temperature=1.2)
    assert presets.get("Cold").settings == ChatSettings()
    assert presets.default_name == DEFAULT_PRESET and presets.get("Balanced").builtin
    warning = presets_file.warning or ""
    for needle in ("'Warm': top_p", "'Cold': all", "built-in preset", "control characters", "'Gone' does not exist"):
        assert needle in warning, (needle, warning)


def test_a_presets_file_of_invalid_utf8_is_reported_not_raised(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "presets.json").write_bytes(b'{"default": "\xff"}')
    presets_file = PresetsFile(data_dir)
    assert presets_file.load().default_name == DEFAULT_PRESET
    assert presets_file.warning and "could not be read" in presets_file.warning
