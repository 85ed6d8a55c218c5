"""The llama.cpp build runs on any x86-64 CPU and never uses ggml's AMX kernels.

Checks that cannot depend on the machine they run on: the installed libraries are scanned for
the AMX kernel's symbol (present only if compiled in, whatever CPU runs the test), every CPU
level module is shipped, and the level ggml chooses here is the one the CPU's own flags call
for. Plus the build description itself: no AMX level, a cache key that changes with every
flag and never with the build machine's CPU.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.selftest import run_selftest

_REPO = Path(__file__).resolve().parents[2]
_BUILD = _REPO / "packaging" / "llama"


def _build_module():
    spec = importlib.util.spec_from_file_location("hearth_llama_build", _BUILD / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lib_dir() -> Path:
    spec = importlib.util.find_spec("llama_cpp")
    assert spec and spec.origin
    return Path(spec.origin).parent / "lib"


_REPORT = """
import dataclasses, json, llama_cpp
from engine.backends import load_backends
r = load_backends(llama_cpp)
print(json.dumps(dataclasses.asdict(r) | {"system_info": llama_cpp.llama_print_system_info().decode()}))
"""


@pytest.fixture(scope="module")
def backends() -> dict:
    """What the engine loads, from a fresh process (native code stays out of the test process)."""
    done = subprocess.run([sys.executable, "-c", _REPORT], capture_output=True, text=True, timeout=120, cwd=_REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the installed build ------------------------------------------------------------------


def test_no_shipped_library_contains_the_amx_kernels() -> None:
    libs = [p for p in _lib_dir().iterdir() if p.is_file() and re.search(r"\.(so|dylib|dll)(\.\d+)*$", p.name)]
    assert libs, f"no shared libraries in {_lib_dir()}"
    with_amx = [p.name for p in libs if b"ggml_backend_amx_mul_mat" in p.read_bytes()]
    assert with_amx == [], f"ggml's AMX kernels (llama.cpp #20824) are compiled into {with_amx}"


def test_every_cpu_level_is_shipped_and_was_built_portable() -> None:
    levels = [v["name"] for v in tomllib.loads((_BUILD / "build.toml").read_text())["cpu_variants"]["x86_64"]]
    shipped = {re.sub(r"^libggml-cpu-|\.so$", "", p.name) for p in _lib_dir().glob("libggml-cpu-*.so")}
    assert set(levels) <= shipped
    info = json.loads((_lib_dir().parent / "hearth_build.json").read_text())
    assert "-DGGML_NATIVE=OFF" in info["cmake_args"] and "-DGGML_BACKEND_DL=ON" in info["cmake_args"]


def test_the_cpu_code_in_use_has_no_amx(backends: dict) -> None:
    assert "AMX_INT8 = 1" not in backends["system_info"] and "AMX_TILE" not in backends["system_info"]
    assert not any(f.startswith("AMX") for f in backends["cpu_features"])


def _cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


# ggml's feature names -> the Linux cpuinfo flags its cpuid check requires, and ggml's score bits
# (ggml/src/ggml-cpu/arch/x86/cpu-feats.cpp).
_NEEDS = {
    "FMA": ({"fma"}, 1),
    "F16C": ({"f16c"}, 2),
    "SSE42": ({"sse4_2"}, 4),
    "BMI2": ({"bmi2"}, 8),
    "AVX": ({"avx"}, 16),
    "AVX2": ({"avx2"}, 32),
    "AVX_VNNI": ({"avx_vnni"}, 64),
    "AVX512": ({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}, 128),
    "AVX512_VBMI": ({"avx512vbmi"}, 256),
    "AVX512_BF16": ({"avx512_bf16"}, 512),
    "AVX512_VNNI": ({"avx512_vnni"}, 1024),
}


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU's flags from Linux /proc/cpuinfo")
def test_ggml_picks_the_best_level_this_cpu_supports(backends: dict) -> None:
    flags = _cpu_flags()
    levels = tomllib.loads((_BUILD / "build.toml").read_text())["cpu_variants"]["x86_64"]
    scores = {}
    for v in levels:
        if all(_NEEDS[f][0] <= flags for f in v["features"]):
            scores[v["name"]] = 1 + sum(_NEEDS[f][1] for f in v["features"])
    best = max(scores, key=scores.__getitem__)
    assert backends["cpu_module"] == f"libggml-cpu-{best}.so", (
        backends["cpu_module"],
        sorted(flags & {f for need, _ in _NEEDS.values() for f in need}),
    )


def _levels() -> list[dict]:
    return tomllib.loads((_BUILD / "build.toml").read_text())["cpu_variants"]["x86_64"]


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU's flags from Linux /proc/cpuinfo")
@pytest.mark.parametrize("level", [v["name"] for v in _levels()])
def test_each_level_this_cpu_can_run_answers_on_its_own(
    level: str, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an older CPU gets: the library folder with one CPU level left, and a real prompt."""
    features = next(v["features"] for v in _levels() if v["name"] == level)
    if not all(_NEEDS[f][0] <= _cpu_flags() for f in features):
        pytest.skip(f"this CPU lacks what {level} needs")
    lib = tmp_path / "lib"
    shutil.copytree(_lib_dir(), lib)
    for p in lib.glob("libggml-cpu-*.so"):
        if p.name != f"libggml-cpu-{level}.so":
            p.unlink()
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", str(lib))  # llama-cpp-python's own override, read by the child
    result = run_selftest(str(model_path), n_threads=1, n_decode=4)
    assert result.ok, result.message
    assert result.backends and result.backends["cpu_module"] == f"libggml-cpu-{level}.so"
    assert result.decode_tokens > 0


def test_a_multi_token_prompt_evaluates_and_decodes(model_path: Path) -> None:
    """The AMX crash needed a batch of two or more tokens: this is the prompt that crashed."""
    result = run_selftest(str(model_path), n_threads=1, n_decode=8)
    assert result.ok, result.message
    assert result.prompt_tokens >= 6 and result.decode_tokens > 0 and result.text.strip()
    assert result.backends and result.backends["cpu_module"]


# -- the build description ------------------------------------------------------------------


def test_build_toml_has_no_amx_level_and_refuses_one(tmp_path: Path) -> None:
    build = _build_module()
    config = build.load_config()
    for v in config["cpu_variants"]["x86_64"]:
        assert not build.AMX_FEATURES & set(v["features"]), v
    bad = (
        (_BUILD / "build.toml")
        .read_text()
        .replace(
            'features = ["SSE42", "AVX", "F16C", "FMA", "AVX2", "BMI2"]',
            'features = ["SSE42", "AVX2", "AMX_TILE", "AMX_INT8"]',
            1,
        )
    )
    (tmp_path / "build.toml").write_text(bad)
    with pytest.raises(build.BuildError, match="AMX"):
        build.load_config(tmp_path / "build.toml")


def test_the_pinned_version_is_the_one_pyproject_installs() -> None:
    config = _build_module().load_config()
    pyproject = tomllib.loads((_REPO / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("llama-cpp-python")]
    assert pins == [f"llama-cpp-python=={config['llama-cpp-python']['version']}"]


def test_the_cache_key_follows_every_flag_and_not_the_build_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    build = _build_module()
    config = build.load_config()
    key = build.build_key(config, "cpu")
    assert build.build_key(config, "cuda") != key
    changed = json.loads(json.dumps(config))
    changed["common"]["cmake_args"].append("-DGGML_LTO=ON")
    assert build.build_key(changed, "cpu") != key
    fewer = json.loads(json.dumps(config))
    fewer["cpu_variants"]["x86_64"].pop()
    assert build.build_key(fewer, "cpu") != key
    monkeypatch.setattr("platform.processor", lambda: "Some Other CPU with AMX")
    assert build.build_key(config, "cpu") == key
    assert build.wheel_dir(Path("/c"), config, "cpu").name.endswith(f"-cpu-{key}")


def test_the_patch_swaps_the_x86_level_list_and_refuses_an_unknown_layout(tmp_path: Path) -> None:
    build = _build_module()
    config = build.load_config()
    src = tmp_path / "src"
    ggml = src / "vendor/llama.cpp/ggml/src"
    ggml.mkdir(parents=True)
    (src / "llama_cpp").mkdir()
    (ggml / "CMakeLists.txt").write_text(
        "if (GGML_CPU_ALL_VARIANTS)\n    if (NOT GGML_BACKEND_DL)\n    endif()\n"
        '    if (GGML_SYSTEM_ARCH STREQUAL "x86")\n        ggml_add_cpu_backend_variant(x64)\n'
        "        ggml_add_cpu_backend_variant(sapphirerapids SSE42 AMX_TILE AMX_INT8)\n"
        '    elseif(GGML_SYSTEM_ARCH STREQUAL "ARM")\n        ggml_add_cpu_backend_variant(armv8.0_1)\n    endif()\n'
        "endif()\n"
    )
    (src / "CMakeLists.txt").write_text("    llama_cpp_python_install_target(ggml-cpu)\n")
    build.patch_source(src, config, "cpu", "k")
    text = (ggml / "CMakeLists.txt").read_text()
    assert "sapphirerapids" not in text and "AMX" not in text.replace("(none with AMX)", "")
    assert "ggml_add_cpu_backend_variant(zen4 " in text and "armv8.0_1" in text
    assert "^ggml-cpu-" in (src / "CMakeLists.txt").read_text()
    assert json.loads((src / "llama_cpp/hearth_build.json").read_text())["key"] == "k"
    (ggml / "CMakeLists.txt").write_text("something else\n")
    with pytest.raises(build.BuildError, match="layout"):
        build.patch_source(src, config, "cpu", "k")


def test_the_loader_library_is_told_apart_from_ggml_base_and_the_backends() -> None:
    """The engine must open the libggml libllama uses, never ggml-base or a CPU module."""
    from engine.backends import _is_libggml

    for name in ("libggml.so", "libggml.so.0", "libggml.so.0.25.3", "libggml.0.dylib", "libggml.dylib", "ggml.dll"):
        assert _is_libggml(name), name
    for name in ("libggml-base.so.0", "libggml-cpu-icelake.so", "libggml-cuda.so", "ggml-base.dll", "libllama.so"):
        assert not _is_libggml(name), name


def test_the_build_writes_only_the_wheel_path_to_stdout() -> None:
    """bootstrap.sh reads the wheel's path from build.py's stdout: the tools it runs (pip's
    build log) must write elsewhere, or a fresh build's install reads their lines as a path."""
    script = (
        "import sys; sys.path.insert(0, 'packaging/llama'); import build; "
        "build.run([sys.executable, '-c', 'print(\"Building wheel... still running\")'])"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=_REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "still running" in r.stderr
