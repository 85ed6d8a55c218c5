"""Memory fit before loading: the estimate against llama.cpp's own numbers, verdicts, GPU layers.

llama.cpp runs only in subprocesses: once to log its KV cache size, once to measure how
much memory the engine really takes with the bundled model.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.fit import (
    GPU_RESERVE,
    TIGHT_SHARE,
    GpuMemory,
    Verdict,
    available_memory,
    estimate_fit,
    gpu_memory,
    kv_cache_bytes,
    overhead_bytes,
    parse_nvidia_smi,
)
from engine.gguf_info import GGUFInfo, read_gguf_info

_REPO = Path(__file__).resolve().parents[2]
_MIB = 1 << 20
_GIB = 1 << 30
_KV_CONTEXTS = (4096, 1000)
_LOG_KV = """
import sys
import llama_cpp
from engine.backends import load_backends
load_backends(llama_cpp)
for n_ctx in map(int, sys.argv[2:]):
    llama_cpp.Llama(model_path=sys.argv[1], n_ctx=n_ctx, verbose=True).close()
"""
# The engine as Hearth runs it, with the context filled: how much memory did the model add?
_MEASURE_RSS = """
import sys, threading, time
import psutil
import llama_cpp  # the library's own pages are not the model's cost
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.local import LocalModel
n_ctx = int(sys.argv[2])
proc = psutil.Process()
base = proc.memory_info().rss
model = LocalModel(LoadModel(sys.argv[1], n_ctx=n_ctx))
tokens = model._llm.tokenize(b"the quick brown fox jumps over the lazy dog " * 1000)
text = model._llm.detokenize(tokens[: n_ctx - 100]).decode("utf-8", "replace")
model.generate(Generate(1, (ChatMessage("user", text),), Sampling.greedy(8)), threading.Event(), lambda e: None,
               time.perf_counter())
print(proc.memory_info().rss - base)
"""


@pytest.fixture(scope="module")
def info(model_path: Path) -> GGUFInfo:
    return read_gguf_info(model_path)


@pytest.fixture(scope="module")
def llama_cpp_kv_mib(model_path: Path) -> dict[int, float]:
    """llama.cpp's logged KV cache size, per context size asked for."""
    done = subprocess.run(
        [sys.executable, "-c", _LOG_KV, str(model_path), *map(str, _KV_CONTEXTS)],
        capture_output=True,
        text=True,
        cwd=_REPO,
        timeout=180,
        check=True,
    )
    sizes = [float(m) for m in re.findall(r"llama_kv_cache: size =\s*([\d.]+) MiB", done.stderr)]
    assert len(sizes) == len(_KV_CONTEXTS), done.stderr[-2000:]
    return dict(zip(_KV_CONTEXTS, sizes))


def _seven_b_like(info: GGUFInfo) -> GGUFInfo:
    """A 7B-sized Q4 model: 32 layers of 120 MiB, 8 KV heads of 128."""
    return dataclasses.replace(
        info,
        size_bytes=32 * 120 * _MIB + 400 * _MIB,
        block_count=32,
        layer_bytes=(120 * _MIB,) * 32,
        other_bytes=400 * _MIB,
        embedding_length=4096,
        head_count=32,
        head_count_kv=8,
        key_length=128,
        value_length=128,
    )


# -- the estimate against llama.cpp -----------------------------------------------------------


@pytest.mark.parametrize("n_ctx", _KV_CONTEXTS, ids=["ctx-4096", "ctx-1000-padded"])
def test_kv_cache_matches_llama_cpp(n_ctx: int, info: GGUFInfo, llama_cpp_kv_mib: dict[int, float]) -> None:
    ours = kv_cache_bytes(info, n_ctx) / _MIB
    assert ours == pytest.approx(llama_cpp_kv_mib[n_ctx], rel=0.01)
    assert kv_cache_bytes(info, 4096) == 30 * 4096 * 3 * (64 + 64) * 2  # 90 MiB


def test_a_quantised_kv_cache_is_smaller(info: GGUFInfo) -> None:
    assert kv_cache_bytes(info, 4096, bytes_per_value=34 / 32) < kv_cache_bytes(info, 4096) // 1.8  # q8_0


def test_the_estimate_covers_what_the_engine_really_takes(info: GGUFInfo, model_path: Path) -> None:
    n_ctx = 2048
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE_RSS, str(model_path), str(n_ctx)],
        capture_output=True,
        text=True,
        cwd=_REPO,
        timeout=240,
        check=True,
    )
    growth = int(done.stdout.strip().splitlines()[-1])
    fit = estimate_fit(info, n_ctx=n_ctx, available_bytes=64 * _GIB)
    # Measured 194 MiB against an estimate of 395 MiB: the floor is generous for a tiny model.
    assert growth <= fit.needed_bytes <= 2.5 * growth, f"measured {growth / _MIB:.0f} MiB"


def test_overhead_has_a_floor_and_grows_with_the_context(info: GGUFInfo) -> None:
    assert overhead_bytes(info, 4096) == 256 * _MIB
    big = _seven_b_like(info)
    assert overhead_bytes(big, 4096) == 32 * 4096 * 4096 == 512 * _MIB
    assert overhead_bytes(big, 32768) == 8 * overhead_bytes(big, 4096)


# -- verdicts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "verdict", "opening"),
    [
        (0.5, Verdict.FITS, "Fits: needs about 0.5 GB of 0.9 GB free"),
        (0.9, Verdict.TIGHT, "Tight: needs about 0.5 GB of 0.5 GB free"),
        (1.5, Verdict.TOO_BIG, "Too big: needs about 0.5 GB but only 0.3 GB is free"),
    ],
    ids=["fits", "tight", "too-big"],
)
def test_verdicts(share: float, verdict: Verdict, opening: str, info: GGUFInfo) -> None:
    needed = estimate_fit(info, n_ctx=4096, available_bytes=64 * _GIB).needed_bytes
    fit = estimate_fit(info, n_ctx=4096, available_bytes=int(needed / share))
    assert fit.verdict is verdict
    assert fit.message.startswith(opening), fit.message
    assert "context 0.1 GB for 4,096 tokens" in fit.message
    assert fit.needed_bytes == fit.weights_bytes + fit.kv_bytes + fit.overhead_bytes == fit.ram_bytes
    assert (fit.gpu_layers, fit.vram_bytes) == (0, 0)


def test_the_tight_line_sits_at_the_documented_share(info: GGUFInfo) -> None:
    needed = estimate_fit(info, n_ctx=4096, available_bytes=64 * _GIB).needed_bytes
    at_line = int(needed / TIGHT_SHARE)
    assert estimate_fit(info, n_ctx=4096, available_bytes=at_line + 2).verdict is Verdict.FITS
    assert estimate_fit(info, n_ctx=4096, available_bytes=at_line - 2).verdict is Verdict.TIGHT
    assert estimate_fit(info, n_ctx=4096, available_bytes=needed).verdict is Verdict.TIGHT
    assert estimate_fit(info, n_ctx=4096, available_bytes=needed - 1).verdict is Verdict.TOO_BIG


def test_a_bigger_context_needs_more(info: GGUFInfo) -> None:
    small, large = (estimate_fit(info, n_ctx=n, available_bytes=64 * _GIB) for n in (2048, 32768))
    assert large.kv_bytes == 16 * small.kv_bytes
    assert large.needed_bytes > small.needed_bytes
    assert "32,768 tokens" in large.message


# -- GPU layers ----------------------------------------------------------------------------------


def _gpu(free: int) -> GpuMemory:
    return GpuMemory("NVIDIA GeForce RTX 3060", 12 * _GIB, free)


def test_no_gpu_or_no_gpu_build_offloads_nothing(info: GGUFInfo) -> None:
    assert estimate_fit(info, n_ctx=4096, available_bytes=8 * _GIB, gpu_offload_supported=True).gpu_layers == 0
    fit = estimate_fit(info, n_ctx=4096, available_bytes=8 * _GIB, gpu=_gpu(11 * _GIB))
    assert fit.gpu_layers == 0 and fit.vram_bytes == 0
    assert "not used" in fit.message and "CPU only" in fit.message


def test_a_roomy_gpu_takes_every_layer_and_the_output(info: GGUFInfo) -> None:
    fit = estimate_fit(info, n_ctx=4096, available_bytes=8 * _GIB, gpu=_gpu(11 * _GIB), gpu_offload_supported=True)
    assert fit.gpu_layers == info.block_count + 1 == 31
    moved = sum(info.layer_bytes) + fit.kv_bytes
    assert fit.ram_bytes == fit.needed_bytes - moved  # the token embedding stays in RAM
    assert fit.vram_bytes == moved + info.other_bytes + fit.overhead_bytes
    assert "31 of 31 layers on the GPU (NVIDIA GeForce RTX 3060: " in fit.message


@pytest.mark.parametrize("free_gib", [1, 4, 8], ids=["1-gib", "4-gib", "8-gib"])
def test_a_small_gpu_takes_as_many_whole_layers_as_fit(free_gib: int, info: GGUFInfo) -> None:
    model = _seven_b_like(info)
    fit = estimate_fit(
        model, n_ctx=4096, available_bytes=64 * _GIB, gpu=_gpu(free_gib * _GIB), gpu_offload_supported=True
    )
    per_layer = 120 * _MIB + fit.kv_bytes // 32  # its weights and its share of the KV cache
    budget = free_gib * _GIB - GPU_RESERVE - fit.overhead_bytes
    # The 400 MiB output layer first (llama.cpp's order), then whole blocks: 8 GiB holds them all.
    expected = {1: 0, 4: 20, 8: 33}[free_gib]
    assert fit.gpu_layers == expected
    if expected:
        blocks, output = expected - 1, 400 * _MIB
        assert output + blocks * per_layer <= budget
        assert blocks == 32 or output + (blocks + 1) * per_layer > budget
    assert fit.vram_bytes <= free_gib * _GIB - GPU_RESERVE


def test_the_bundled_model_splits_on_a_nearly_full_gpu(info: GGUFInfo) -> None:
    fit = estimate_fit(info, n_ctx=4096, available_bytes=8 * _GIB, gpu=_gpu(850 * _MIB), gpu_offload_supported=True)
    assert 1 < fit.gpu_layers < info.block_count  # the output layer and some blocks
    assert fit.needed_bytes > fit.ram_bytes > 0
    assert f"{fit.gpu_layers} of 31 layers on the GPU" in fit.message


@pytest.mark.parametrize(
    ("asked", "given"),
    [(0, 0), (10, 10), (30, 30), (31, 31), (99, 31), (-1, 31)],
    ids=["none", "ten", "all-blocks", "all-and-output", "too-many-clamped", "minus-one-all"],
)
def test_an_explicit_layer_count_is_clamped(asked: int, given: int, info: GGUFInfo) -> None:
    fit = estimate_fit(
        info, n_ctx=4096, available_bytes=8 * _GIB, gpu=_gpu(11 * _GIB), gpu_offload_supported=True, n_gpu_layers=asked
    )
    assert fit.gpu_layers == given
    without_gpu_build = estimate_fit(info, n_ctx=4096, available_bytes=8 * _GIB, n_gpu_layers=asked)
    assert without_gpu_build.gpu_layers == 0


def test_one_layer_is_the_output_layer_alone(info: GGUFInfo) -> None:
    fit = estimate_fit(
        info, n_ctx=4096, available_bytes=8 * _GIB, gpu=_gpu(11 * _GIB), gpu_offload_supported=True, n_gpu_layers=1
    )
    assert fit.ram_bytes == fit.needed_bytes
    assert fit.vram_bytes == info.other_bytes + fit.overhead_bytes


def test_a_gpu_without_room_for_the_output_layer_gets_nothing(info: GGUFInfo) -> None:
    fit = estimate_fit(
        info, n_ctx=4096, available_bytes=8 * _GIB, gpu=_gpu(GPU_RESERVE + 256 * _MIB), gpu_offload_supported=True
    )
    assert fit.gpu_layers == 0 and fit.vram_bytes == 0 and "GPU" not in fit.message


def test_a_context_must_be_positive(info: GGUFInfo) -> None:
    with pytest.raises(ValueError, match="n_ctx"):
        estimate_fit(info, n_ctx=0, available_bytes=8 * _GIB)


def test_too_many_explicit_layers_for_the_gpu_is_too_big(info: GGUFInfo) -> None:
    model = _seven_b_like(info)
    fit = estimate_fit(
        model, n_ctx=4096, available_bytes=64 * _GIB, gpu=_gpu(2 * _GIB), gpu_offload_supported=True, n_gpu_layers=33
    )
    assert fit.verdict is Verdict.TOO_BIG
    assert fit.message.startswith("Too big for the GPU: 33 layers need about")


# -- probing the machine --------------------------------------------------------------------------


def test_available_memory_is_plausible() -> None:
    import psutil

    free = available_memory()
    assert 0 < free <= psutil.virtual_memory().total


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NVIDIA GeForce RTX 3090, 24576, 23840\n", ("NVIDIA GeForce RTX 3090", 24576, 23840)),
        (
            "NVIDIA H100 80GB HBM3, 81559, 81008\nNVIDIA H100 80GB HBM3, 81559, 2\n",
            ("NVIDIA H100 80GB HBM3", 81559, 81008),
        ),
        ("Tesla T4, [N/A], [N/A]\nNVIDIA L4, 23034, 22300\n", ("NVIDIA L4", 23034, 22300)),
        ("Quadro RTX 4000, with a comma, 8192, 7000\r\n", ("Quadro RTX 4000, with a comma", 8192, 7000)),
        ("NVIDIA A10, 24564, 30000\n", ("NVIDIA A10", 24564, 24564)),  # free never exceeds total
    ],
    ids=["one-gpu", "two-gpus-first-wins", "unsupported-line-skipped", "comma-in-name", "free-clamped"],
)
def test_nvidia_smi_output_parses(text: str, expected: tuple[str, int, int]) -> None:
    name, total, free = expected
    assert parse_nvidia_smi(text) == GpuMemory(name, total * _MIB, free * _MIB)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "No devices were found\n",
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
        "NVIDIA GeForce RTX 3090, 24576\n",
        "a, b, c\n",
        "GPU, nan, 5\n",
        "GPU, inf, 5\n",
        "GPU, 0, 0\n",
        "GPU, 8192, -1\n",
        ", 8192, 100\n",
        "\x00\xff, garbage",
    ],
    ids=[
        "empty",
        "blank-lines",
        "no-devices",
        "driver-failure",
        "missing-field",
        "words",
        "nan",
        "inf",
        "zero-total",
        "negative-free",
        "no-name",
        "binary",
    ],
)
def test_nvidia_smi_garbage_is_no_gpu(text: str) -> None:
    assert parse_nvidia_smi(text) is None


def _fake_smi(folder: Path, body: str) -> None:
    exe = folder / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(0o755)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "echo 'NVIDIA GeForce RTX 4090, 24564, 20000'",
            GpuMemory("NVIDIA GeForce RTX 4090", 24564 * _MIB, 20000 * _MIB),
        ),
        ("echo 'NVIDIA-SMI has failed' >&2; exit 9", None),
        ("exec /bin/sleep 30", None),
        (None, None),
    ],
    ids=["works", "fails", "hangs", "absent"],
)
def test_gpu_memory_asks_nvidia_smi(
    body: str | None, expected: GpuMemory | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if body is not None:
        _fake_smi(tmp_path, body)
    monkeypatch.setenv("PATH", str(tmp_path))
    t0 = time.monotonic()
    assert gpu_memory() == expected
    assert time.monotonic() - t0 < 5


def test_this_machine_answers_with_its_own_gpu_or_none() -> None:
    """No fake: the first GPU that nvidia-smi itself lists, or None where there is no nvidia-smi
    (or it fails), as on a machine without an NVIDIA GPU."""
    t0 = time.monotonic()
    found = gpu_memory()
    assert time.monotonic() - t0 < 5
    exe = shutil.which("nvidia-smi")
    listed = (
        None
        if exe is None
        else subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    )
    if listed is None or listed.returncode != 0:
        assert found is None
        return
    name, total = listed.stdout.splitlines()[0].rsplit(",", 1)
    assert found is not None
    assert (found.name, found.total_bytes) == (name.strip()[:80], int(float(total) * _MIB))
    assert 0 <= found.free_bytes <= found.total_bytes
