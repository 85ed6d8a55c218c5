"""Setting a provider up without knowing its wire details: presets for the common servers, the
kinds in words, and a connection test that also lists the server's models.

    PRESETS        OpenAI, OpenRouter, Groq, a local Ollama, LM Studio's server, vLLM,
                   llama-server, Dify: each fills the kind and the base URL
    probe(config, key)   asks the server for its models (OpenAI-compatible: GET /models,
                   Ollama: GET /api/tags, Dify: GET /parameters): a Probe says whether it
                   answered, why not in words a person can act on, and the model ids; no
                   secret (key, header value, URL password) appears in it, in any form
Must not: import Qt, or write anything (the Providers window saves).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.providers import ProviderConfig
from engine.credentials import problem
from engine.scrub import SecretScrubber

__all__ = ["KIND_LABELS", "PRESETS", "Preset", "Probe", "probe"]

KIND_LABELS = {
    "openai": "OpenAI-compatible",
    "ollama": "Ollama",
    "dify-chat": "Dify chat app",
    "dify-workflow": "Dify workflow",
}


@dataclass(frozen=True, slots=True)
class Preset:
    label: str
    name: str  # the provider name it suggests
    kind: str
    base_url: str
    needs_key: bool


PRESETS = (
    Preset("OpenAI", "openai", "openai", "https://api.openai.com/v1", True),
    Preset("OpenRouter", "openrouter", "openai", "https://openrouter.ai/api/v1", True),
    Preset("Groq", "groq", "openai", "https://api.groq.com/openai/v1", True),
    Preset("Ollama on this computer", "ollama", "ollama", "http://127.0.0.1:11434", False),
    Preset("LM Studio's server on this computer", "lm-studio", "openai", "http://127.0.0.1:1234/v1", False),
    Preset("vLLM", "vllm", "openai", "http://127.0.0.1:8000/v1", False),
    Preset("llama.cpp's llama-server", "llama-server", "openai", "http://127.0.0.1:8080/v1", False),
    Preset("Dify (chat app)", "dify", "dify-chat", "https://api.dify.ai/v1", True),
)


@dataclass(frozen=True, slots=True)
class Probe:
    ok: bool
    message: str
    models: tuple[str, ...] = ()


async def probe(config: ProviderConfig, key: str | None, *, timeout_s: float = 10.0) -> Probe:
    """Whether the server answers with this configuration (and its key), and its models."""
    import httpx

    base = config.base_url.rstrip("/")
    host = urlsplit(base).netloc or base
    if config.kind == "ollama":
        url = f"{base}/api/tags"
    elif config.kind.startswith("dify"):
        url = f"{base}/parameters"
    else:
        url = f"{base}/models"
    key = key.strip() if key else None
    headers = {k: v.strip() for k, v in config.headers.items() if v.strip()}
    refused = [
        p
        for value, what in [
            (key or "", "The API key"),
            *((v, f"The value of the header {h}") for h, v in headers.items()),
        ]
        if (p := problem(value, what))
    ]
    if refused:
        return Probe(False, refused[0])
    if key:
        headers["Authorization"] = f"Bearer {key}"
    scrub = SecretScrubber.for_request(key, config.headers.items(), config.url_auth).scrub
    auth = config.url_auth if config.url_auth and any(config.url_auth) else None
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, config.connect_timeout_s))
        ) as client:
            r = await client.get(url, headers=headers, auth=auth or httpx.USE_CLIENT_DEFAULT)
    except httpx.ConnectError:
        return Probe(
            False,
            f"Could not connect to {host}: nothing answers there. Is the server running, and is the address right?",
        )
    except httpx.TimeoutException:
        return Probe(False, f"{host} did not answer within {timeout_s:.0f} s.")
    except httpx.HTTPError as e:
        return Probe(False, f"Could not reach {host}: {type(e).__name__}.")
    if r.status_code in (401, 403):
        what = "needs an API key: paste it below" if not key else "refused the API key: check it"
        return Probe(False, f"{host} {what} ({r.status_code}).")
    if r.status_code == 404:
        hint = " (an OpenAI-compatible URL usually ends in /v1)" if config.kind == "openai" else ""
        return Probe(False, f"{host} answered, but not at {urlsplit(url).path}: check the base URL{hint}.")
    if r.status_code >= 400:
        return Probe(False, f"{host} answered {r.status_code}: {scrub(r.text)[:200]}")
    models = _models(config.kind, r)
    listed = f"; {len(models)} model{'s' * (len(models) != 1)} available" if models else ""
    return Probe(True, f"Connected to {host}{listed}.", models)


def _models(kind: str, r: object) -> tuple[str, ...]:
    try:
        body = r.json()  # type: ignore[attr-defined]
    except ValueError:
        return ()
    if kind == "ollama":
        items, key = body.get("models", []) if isinstance(body, dict) else [], "name"
    elif kind == "openai":
        items, key = body.get("data", []) if isinstance(body, dict) else [], "id"
    else:
        return ()
    return tuple(sorted(str(m[key]) for m in items if isinstance(m, dict) and m.get(key)))
