"""Build (once) and cache llama.cpp's own `llama-bench` from the source Hearth's wheel is built
from; print the executable's path.

    python packaging/llama/build_bench.py [--backend cpu] [--cache DIR] [--key]

`hearth bench overhead` compares Hearth's decode with llama.cpp's own; the comparison means
something only if both run the same llama.cpp. So this builds from the same PyPI source
distribution as build.py (the same cached file, checked by the same sha256), with build.toml's
flags, and caches the result beside the wheel under a key made of the wheel's key (every
build.toml setting, build.py, the platform) and this build's own flags and recipe: a changed flag
or source builds once more, and a stale build is never picked up.

Only the `llama-bench` target is built, without ggml's CPU code: at run time the bench loads
the wheel's own CPU level modules (libggml-cpu-*.so; ggml scores the ones it finds in the
executable's folder and the working directory, and the bench runs it from the wheel's lib
folder). With GGML_BACKEND_DL the CPU code lives only in those modules, so leaving it out
changes nothing in libggml, libggml-base or libllama and skips most of the compile.

Exit status: 0 built (or cached); 3 it cannot be built on this machine (no cmake, no C++
compiler, no source): the message says what is missing; 1 the build failed.
Standard library only, like build.py.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
EXE = "llama-bench.exe" if sys.platform == "win32" else "llama-bench"
UNAVAILABLE = 3
# Bump when a change below changes what is built (the key then changes, and the next run rebuilds);
# wording and messages leave it, so editing them does not cost a rebuild.
RECIPE = 1
# What the bench build sets on top of build.toml's flags (later -D values win in CMake).
BENCH_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=ON",  # GGML_BACKEND_DL requires it, as in the wheel
    "-DGGML_CPU=OFF",  # the CPU code comes from the wheel's modules (see above)
    "-DGGML_CPU_ALL_VARIANTS=OFF",
    "-DLLAMA_BUILD_COMMON=ON",  # llama-bench links llama.cpp's common library
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",  # llama-bench reads a local file; no download code
    "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON",  # the cached folder moves: find the libraries beside the executable
    "-DCMAKE_INSTALL_RPATH=" + ("@loader_path" if sys.platform == "darwin" else "$ORIGIN"),
]


def say(msg: str) -> None:
    print(f"hearth-llama-bench-build: {msg}", file=sys.stderr, flush=True)


def wheel_build() -> ModuleType:
    """build.py beside this file: the wheel's config, key, source and errors are its own."""
    spec = importlib.util.spec_from_file_location("hearth_llama_build", HERE / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_args(build: ModuleType, config: dict, backend: str) -> list[str]:
    overridden = {a.split("=", 1)[0] for a in BENCH_ARGS}
    kept = [a for a in build.cmake_args(config, backend) if a.split("=", 1)[0] not in overridden]
    return [*kept, *BENCH_ARGS]


def bench_key(build: ModuleType, config: dict, backend: str) -> str:
    """The wheel's key (every build.toml setting, build.py, the platform) plus this build's own."""
    material = {"wheel_key": build.build_key(config, backend), "args": bench_args(build, config, backend)}
    material["recipe"] = RECIPE
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def bench_dir(build: ModuleType, cache: Path, config: dict, backend: str) -> Path:
    version = config["llama-cpp-python"]["version"]
    return cache / f"llama-bench-{version}-{backend}-{bench_key(build, config, backend)}"


def missing_tools() -> list[str]:
    missing = [] if shutil.which("cmake") else ["cmake"]
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++", "cl")):
        missing.append("a C++ compiler (g++ or clang++)")
    return missing


def _run(cmd: list[str], build: ModuleType) -> None:
    proc = subprocess.run(cmd, stdout=sys.stderr)  # stdout carries only the executable's path
    if proc.returncode != 0:
        raise build.BuildError(f"{' '.join(cmd[:4])} … failed (exit {proc.returncode}); the output above says why.")


def build_bench(build: ModuleType, config: dict, backend: str, cache: Path) -> Path:
    target = bench_dir(build, cache, config, backend)
    if (target / EXE).exists():
        return target / EXE
    cache.mkdir(parents=True, exist_ok=True)
    sdist = build.fetch_sdist(config, cache)
    args = bench_args(build, config, backend)
    jobs = str(os.cpu_count() or 2)
    say(f"building llama.cpp's llama-bench once, from {sdist.name} (about 9 CPU-minutes: 5 minutes on 2 quiet cores)")
    say("cmake " + " ".join(args))
    with tempfile.TemporaryDirectory(prefix="hearth-llama-bench-", dir=cache) as tmp:
        src = build.extract(sdist, Path(tmp) / "src") / "vendor" / "llama.cpp"
        out = Path(tmp) / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        t0 = time.monotonic()
        _run(["cmake", "-S", str(src), "-B", str(out), *generator, *args], build)
        _run(["cmake", "--build", str(out), "--target", "llama-bench", "--parallel", jobs], build)
        seconds = time.monotonic() - t0
        staged = Path(tmp) / "staged"
        staged.mkdir()
        made = out / "bin"
        for path in made.iterdir():
            if path.name == EXE or ".so" in path.name or path.suffix in (".dylib", ".dll"):
                if path.is_symlink():
                    os.symlink(os.readlink(path), staged / path.name)
                else:
                    shutil.copy2(path, staged / path.name)
        if not (staged / EXE).exists():
            raise build.BuildError(f"The build made no {EXE} in {made}.")
        (staged / "build-info.json").write_text(
            json.dumps(
                {
                    "key": bench_key(build, config, backend),
                    "wheel_key": build.build_key(config, backend),
                    "backend": backend,
                    "cmake_args": args,
                    "build_seconds": round(seconds),
                    "cores": os.cpu_count(),
                },
                indent=2,
            )
            + "\n"
        )
        try:
            os.replace(staged, target)  # atomic: a reader sees no build or the whole one
        except OSError:  # another build finished first; keep it
            pass
    say(f"built in {seconds / 60:.1f} min: {target}")
    return target / EXE


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="cpu")
    p.add_argument("--cache", type=Path, default=None, help="default: HEARTH_WHEEL_CACHE or ~/.cache/hearth/wheels")
    p.add_argument("--key", action="store_true", help="print the folder this build would use, build nothing")
    a = p.parse_args(argv)
    build = wheel_build()
    try:
        config = build.load_config()
        cache = a.cache or build.default_cache()
        if a.key:
            print(bench_dir(build, cache, config, a.backend))
            return 0
        if not (bench_dir(build, cache, config, a.backend) / EXE).exists() and (missing := missing_tools()):
            say(f"cannot build llama-bench here: {' and '.join(missing)} not found")
            return UNAVAILABLE
        print(build_bench(build, config, a.backend, cache))
    except build.BuildError as e:
        say(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
