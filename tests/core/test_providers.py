"""Provider configuration (providers.toml), API keys (environment, keychain) and routing."""

from __future__ import annotations

from pathlib import Path

import pytest
from keychains import MemoryKeyring

from app.core.errors import KeychainUnavailable, ProviderError
from app.core.providers import KeyStore, ProviderConfig, ProvidersFile
from app.core.routes import RouteChoice, Router
from engine.wire import load_formats

FORMATS = set(load_formats())


def test_providers_round_trip_through_the_file_without_keys(tmp_path: Path, memory_keychain: MemoryKeyring) -> None:
    f = ProvidersFile(tmp_path, FORMATS)
    lan = ProviderConfig(
        "lan-box",
        "openai",
        "http://192.168.1.20:8000/v1",
        model="qwen",
        headers={"X-Team": "a"},
        stop=("###",),
        first_token_timeout_s=30,
    )
    f.upsert(lan)
    f.upsert(ProviderConfig("ollama", "ollama", "http://127.0.0.1:11434", model="llama3.2:1b"))
    f.upsert(ProviderConfig("LAN-box", "openai", "http://10.0.0.2:8000/v1"))  # same name, any case: replaced
    loaded = f.load()
    assert [p.name for p in loaded] == ["ollama", "LAN-box"]
    assert f.get("lan-box").base_url == "http://10.0.0.2:8000/v1"
    text = f.path.read_text()
    assert "API keys are not kept here" in text and "key" not in text.split("\n", 1)[1].lower().replace("key_env", "")


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (ProviderConfig("x", "openai", "192.168.1.20:8000"), "base_url must start with http"),
        (ProviderConfig("x", "grpc", "http://h"), "kind must be one of dify-chat, dify-workflow, ollama, openai"),
        (ProviderConfig("x", "openai", "http://h", headers={"Authorization": "Bearer sk-1"}), "keychain"),
        (ProviderConfig("x", "openai", "http://h", redact=("([a-z",)), "not a valid regular expression"),
        (ProviderConfig("x", "openai", "http://h", between_tokens_timeout_s=0), "between 0 and 3600"),
        (ProviderConfig("bad/name", "openai", "http://h"), "a name is letters"),
    ],
    ids=["no-scheme", "unknown-kind", "key-in-header", "bad-regex", "zero-timeout", "bad-name"],
)
def test_bad_provider_settings_are_refused_with_the_reason(tmp_path: Path, config: ProviderConfig, words: str) -> None:
    with pytest.raises(ProviderError, match=words):
        ProvidersFile(tmp_path, FORMATS).upsert(config)
    assert not (tmp_path / "providers.toml").exists()


def test_a_hand_edited_file_with_mistakes_names_them(tmp_path: Path) -> None:
    f = ProvidersFile(tmp_path, FORMATS)
    f.path.write_text('[[provider]]\nname = "a"\nkind = "openai"\nbase_url = "http://h"\ncolour = "red"\n')
    with pytest.raises(ProviderError, match="provider #1 \\(a\\) has an unknown field 'colour'"):
        f.load()
    f.path.write_text("[[provider]\n")
    with pytest.raises(ProviderError, match="cannot be read"):
        f.load()


def test_an_environment_variable_wins_over_the_keychain(
    monkeypatch: pytest.MonkeyPatch, memory_keychain: MemoryKeyring
) -> None:
    config = ProviderConfig("Cloud AI", "openai", "https://api.example.invalid/v1")
    keys = KeyStore()
    assert keys.key(config) is None
    keys.set_key(config, "sk-from-keychain")
    assert keys.key(config) == "sk-from-keychain"
    monkeypatch.setenv("HEARTH_API_KEY_CLOUD_AI", "sk-from-env")
    assert keys.key(config) == "sk-from-env"
    custom = ProviderConfig("Cloud AI", "openai", "https://x.invalid/v1", key_env="MY_KEY")
    monkeypatch.setenv("MY_KEY", "sk-custom")
    assert keys.key(custom) == "sk-custom"
    keys.delete_key(config)
    assert memory_keychain.saved == {}


def test_without_a_keychain_saving_a_key_names_the_variable_to_use(no_keychain: None) -> None:
    config = ProviderConfig("lan box", "openai", "http://h")
    assert KeyStore().key(config) is None  # reading just finds nothing
    with pytest.raises(KeychainUnavailable, match="Set the environment variable HEARTH_API_KEY_LAN_BOX"):
        KeyStore().set_key(config, "sk-123456")


def test_the_router_resolves_a_conversations_provider_model_and_key(
    tmp_path: Path, memory_keychain: MemoryKeyring
) -> None:
    f = ProvidersFile(tmp_path, FORMATS)
    f.upsert(ProviderConfig("lan-box", "openai", "http://h/v1", model="default-model", stop=("###",)))
    router = Router(f)
    local = router.resolve(RouteChoice())
    assert local.remote is None and local.provider is None
    KeyStore().set_key(f.get("lan-box"), "sk-lan-123456")
    route = router.resolve(RouteChoice.of("lan-box", "bigger-model"))
    assert route.remote is not None and route.remote.model == "bigger-model" and route.remote.api_key == "sk-lan-123456"
    assert route.filters.stop == ("###",)
    assert "sk-lan" not in repr(route.remote)  # never printed, so never logged
    f.remove("lan-box")
    with pytest.raises(ProviderError, match="'lan-box', which is no longer configured"):
        router.resolve(RouteChoice.of("lan-box"))
