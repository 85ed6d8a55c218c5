"""Which model architectures the llama.cpp that Hearth ships can run, known before any download.

llama.cpp loads an architecture only if its name is in LLM_ARCH_NAMES (src/llama-arch.cpp);
any other name fails at load time with "unknown model architecture". The list below is that
table of the vendored llama.cpp of llama-cpp-python 0.3.36 (the "clip" entry left out: it is a
placeholder for llama-quantize, not a model llama.cpp runs). Regenerate it when the engine is
upgraded with
`awk '/LLM_ARCH_NAMES = {/,/^};/' vendor/llama.cpp/src/llama-arch.cpp | grep -oE '"[a-z0-9_.-]+"'`.

The rule when the installed llama-cpp-python is another version than the one the list was read
from: a listed name is still "supported" (llama.cpp does not drop architectures), an unlisted one
is "unknown" rather than "unsupported", since a newer build may run it.

Must not: import llama_cpp (this answers in the UI process and the CLI in microseconds).
"""

from __future__ import annotations

import functools
from typing import Literal

__all__ = ["LISTED_FOR", "SUPPORTED_ARCHITECTURES", "ArchSupport", "architecture_support"]

ArchSupport = Literal["supported", "unsupported", "unknown"]
LISTED_FOR = "0.3.36"  # the llama-cpp-python version whose llama.cpp the list was read from
SUPPORTED_ARCHITECTURES = frozenset(
    """
    llama llama4 deci falcon grok gpt2 gptj gptneox mpt baichuan starcoder refact bert modern-bert
    nomic-bert nomic-bert-moe neo-bert jina-bert-v2 jina-bert-v3 eurobert bloom stablelm qwen qwen2
    qwen2moe qwen2vl qwen3 qwen3moe qwen3next qwen3vl qwen3vlmoe qwen35 qwen35moe qwen4exp phi2
    phi3 phimoe plamo plamo2 plamo3 codeshell orion internlm2 minicpm minicpm3 gemma gemma2 gemma3
    gemma3n gemma4 gemma4-assistant gemma-embedding starcoder2 mamba mamba2 maple jamba falcon-h1
    xverse command-r cohere2 cohere2moe dbrx olmo olmo2 olmoe muse-glimmer openelm arctic deepseek
    deepseek2 deepseek2-ocr deepseek32 deepseek4 chatglm glm4 glm4moe glm-dsa bitnet t5 t5encoder
    jais jais2 nemotron nemotron_h nemotron_h_moe exaone exaone4 exaone-moe rwkv6 rwkv6qwen2 rwkv7
    arwkv7 granite granitemoe granitehybrid graniteswitch granite_swa chameleon wavtokenizer-dec
    plm bailingmoe bailingmoe2 bailingmoe3 dots1 dots3note arcee afmoe laguna ernie4_5 ernie4_5-moe
    hunyuan-moe hunyuan-dense hunyuan_vl hy_v3 hy_v4 smollm3 gpt-oss lfm2 lfm2moe dream
    smallthinker llada llada-moe seed_oss grovemoe apertus minimax-01 hrm_text minimax-m2
    minimax-m3 cogvlm rnd1 pangu-embedded mistral3 eagle3 dflash mistral4 paddleocr mimo2 step35
    spark2_5 llama-embed maincoder kimi-linear kimi-k3 glm5-next talkie mellum nanbeige qwen3tts
    pockettts
    """.split()  # noqa: SIM905 - one name per word, as the source lists them
)


def architecture_support(architecture: str) -> ArchSupport:
    """Whether this build of llama.cpp can load a model of `architecture` (general.architecture)."""
    if architecture in SUPPORTED_ARCHITECTURES:
        return "supported"
    return "unsupported" if _installed_version() in (LISTED_FOR, None) else "unknown"


@functools.cache
def _installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama_cpp_python")
    except PackageNotFoundError:  # a remote-only install: the list is all there is
        return None
