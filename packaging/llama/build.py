"""Build (once) and cache the llama-cpp-python wheel that Hearth runs on; print its path.

    python packaging/llama/build.py [--backend cpu|cuda|vulkan|metal] [--cache DIR] [--key]

Everything about the build comes from build.toml beside this file. The wheel is cached in
`<cache>/llama-cpp-python-<version>-<backend>-<key>/`, where the key hashes build.toml's
settings, this script and the platform, so a changed flag builds a new wheel once and an old
wheel is never picked up by mistake. The build machine's CPU is not part of the key because
nothing in the build depends on it (GGML_NATIVE is off).

Steps: fetch the PyPI source distribution and check its sha256; rewrite ggml's x86 CPU
level list to build.toml's (llama.cpp offers no option to choose them); make llama-cpp-python
install every CPU level module beside libggml; write `llama_cpp/hearth_build.json` (what
`hearth doctor` reports); build with pip (`--no-cache-dir`: pip's own wheel cache ignores
CMAKE_ARGS); check the result (every level present, no AMX kernels); move it into place.

Standard library only: it runs before Hearth's virtualenv has anything installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "build.toml"
# The AMX matrix-multiply kernel: present in a library only if it was compiled with AMX.
AMX_SYMBOL = b"ggml_backend_amx_mul_mat"
AMX_FEATURES = {"AMX_TILE", "AMX_INT8", "AMX_BF16"}


def say(msg: str) -> None:
    print(f"hearth-llama-build: {msg}", file=sys.stderr, flush=True)


class BuildError(Exception):
    """The build cannot go on; the message says why and what to do."""


def load_config(path: Path = CONFIG) -> dict:
    with open(path, "rb") as f:
        config = tomllib.load(f)
    for variants in config.get("cpu_variants", {}).values():
        for v in variants:
            amx = AMX_FEATURES & set(v["features"])
            if amx:
                raise BuildError(
                    f"CPU level {v['name']!r} in {path} enables {sorted(amx)}: ggml's AMX kernels "
                    "crash (llama.cpp #20824). Remove it."
                )
    return config


def machine() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(m, m)


def cmake_args(config: dict, backend: str) -> list[str]:
    if backend not in config["backends"]:
        raise BuildError(f"Unknown backend {backend!r}; build.toml has: {', '.join(config['backends'])}.")
    return [*config["common"]["cmake_args"], *config["backends"][backend]["cmake_args"]]


def build_key(config: dict, backend: str) -> str:
    """Everything that changes the built wheel, hashed. The build host's CPU is not in it."""
    material = {
        "llama-cpp-python": config["llama-cpp-python"],
        "cmake_args": cmake_args(config, backend),
        "cpu_variants": config.get("cpu_variants", {}).get(machine(), []),
        "backend": backend,
        "platform": [sys.platform, machine()],
        "script": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def default_cache() -> Path:
    if os.environ.get("HEARTH_WHEEL_CACHE"):
        return Path(os.environ["HEARTH_WHEEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hearth" / "wheels"


def wheel_dir(cache: Path, config: dict, backend: str) -> Path:
    version = config["llama-cpp-python"]["version"]
    return cache / f"llama-cpp-python-{version}-{backend}-{build_key(config, backend)}"


def cached_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    return wheels[0] if wheels else None


# -- source ------------------------------------------------------------------------------


def fetch_sdist(config: dict, cache: Path) -> Path:
    """The source distribution, downloaded once into the cache and checked by sha256."""
    version = config["llama-cpp-python"]["version"]
    want = config["llama-cpp-python"]["sdist_sha256"]
    folder = cache / "sdist"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"llama_cpp_python-{version}.tar.gz"
    if not path.exists() or sha256_of(path) != want:
        say(f"downloading the llama-cpp-python {version} source from PyPI")
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "--no-cache-dir",
                    f"llama-cpp-python=={version}",
                    "-d",
                    tmp,
                ]
            )
            got = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
            digest = sha256_of(got)
            if digest != want:
                raise BuildError(
                    f"The llama-cpp-python {version} source from PyPI has sha256 {digest}, "
                    f"not {want} as build.toml says. Refusing to build it."
                )
            os.replace(got, path)
    return path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def extract(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tar:
        tar.extractall(into, filter="data")
    (src,) = [p for p in into.iterdir() if p.is_dir()]
    return src


def _replace_once(text: str, pattern: str, repl: str, what: str) -> str:
    new, n = re.subn(pattern, lambda _m: repl, text, count=1, flags=re.DOTALL)
    if n != 1:
        raise BuildError(
            f"Could not find {what} in the llama-cpp-python source: this version's layout differs "
            "from the one build.py knows. Update build.py for it."
        )
    return new


def variant_block(variants: list[dict]) -> str:
    lines = [
        '    if (GGML_SYSTEM_ARCH STREQUAL "x86")',
        "        # Hearth: the CPU levels chosen in packaging/llama/build.toml (none with AMX)",
    ]
    for v in variants:
        call = f"ggml_add_cpu_backend_variant({v['name']} {' '.join(v['features'])})".replace(" )", ")")
        if v.get("msvc", True):
            lines.append(f"        {call}")
        else:
            lines += ["        if (NOT MSVC)", f"            {call}", "        endif()"]
    return "\n".join(lines) + "\n"


def patch_source(src: Path, config: dict, backend: str, key: str) -> None:
    variants = config.get("cpu_variants", {}).get("x86_64", [])
    ggml = src / "vendor/llama.cpp/ggml/src/CMakeLists.txt"
    text = ggml.read_text()
    # Keep the checks above the x86 branch (GGML_BACKEND_DL required, ...) and swap the branch.
    m = re.search(
        r'if \(GGML_CPU_ALL_VARIANTS\)\n(.*?)(    if \(GGML_SYSTEM_ARCH STREQUAL "x86"\)\n.*?)'
        r'(    elseif\s*\(GGML_SYSTEM_ARCH STREQUAL "ARM"\))',
        text,
        flags=re.DOTALL,
    )
    if m is None:
        raise BuildError(
            "Could not find ggml's x86 CPU level list in the llama-cpp-python source: this version's "
            "layout differs from the one build.py knows. Update build.py for it."
        )
    text = text[: m.start(2)] + variant_block(variants) + text[m.start(3) :]
    ggml.write_text(text)

    # llama-cpp-python installs libraries by target name and knows only "ggml-cpu"; with
    # GGML_CPU_ALL_VARIANTS the modules are ggml-cpu-<level>. Install every one beside libggml.
    top = src / "CMakeLists.txt"
    install_all = (
        "    llama_cpp_python_install_target(ggml-cpu)\n"
        "    # Hearth: every CPU level module (GGML_CPU_ALL_VARIANTS), beside libggml\n"
        "    get_property(_hearth_ggml_targets DIRECTORY vendor/llama.cpp/ggml/src PROPERTY BUILDSYSTEM_TARGETS)\n"
        "    foreach(_hearth_target IN LISTS _hearth_ggml_targets)\n"
        '        if (_hearth_target MATCHES "^ggml-cpu-")\n'
        "            llama_cpp_python_install_target(${_hearth_target})\n"
        "        endif()\n"
        "    endforeach()\n"
    )
    top.write_text(
        _replace_once(
            top.read_text(),
            r"    llama_cpp_python_install_target\(ggml-cpu\)\n",
            install_all,
            "llama-cpp-python's install of ggml-cpu",
        )
    )

    info = {
        "builder": "hearth packaging/llama/build.py",
        "llama_cpp_python": config["llama-cpp-python"]["version"],
        "backend": backend,
        "key": key,
        "cmake_args": cmake_args(config, backend),
        "cpu_variants": [v["name"] for v in variants] if machine() == "x86_64" else "llama.cpp's own list",
        "platform": f"{sys.platform}-{machine()}",
    }
    (src / "llama_cpp" / "hearth_build.json").write_text(json.dumps(info, indent=2) + "\n")


# -- build and check -----------------------------------------------------------------------


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    # pip's progress goes to stderr: stdout carries only the wheel's path, which
    # bootstrap.sh captures (pip's lines there made the install read them as a path).
    proc = subprocess.run(cmd, env=env, stdout=sys.stderr)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd[:6])} … failed (exit {proc.returncode}); the output above says why.")


def check_wheel(wheel: Path, config: dict) -> list[str]:
    """The built wheel has every CPU level and no AMX kernel; returns the CPU module names."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        libs = [n for n in names if re.search(r"llama_cpp/lib/[^/]*\.(so|dylib|dll)(\.\d+)*$", n)]
        for n in libs:
            if AMX_SYMBOL in z.read(n):
                raise BuildError(f"{n} in the built wheel contains ggml's AMX kernels; refusing it.")
    cpu_modules = sorted(Path(n).name for n in libs if "ggml-cpu-" in Path(n).name)
    if machine() == "x86_64":
        want = {v["name"] for v in config["cpu_variants"]["x86_64"]}
        got = {re.sub(r"^(lib)?ggml-cpu-|\.(so|dylib|dll)$", "", m) for m in cpu_modules}
        if want - got:
            raise BuildError(f"The built wheel lacks the CPU levels {sorted(want - got)}.")
    if not cpu_modules:
        raise BuildError("The built wheel has no CPU backend module (llama_cpp/lib/libggml-cpu-*).")
    return cpu_modules


def build(config: dict, backend: str, cache: Path) -> Path:
    key = build_key(config, backend)
    target = wheel_dir(cache, config, backend)
    if (found := cached_wheel(target)) is not None:
        return found
    cache.mkdir(parents=True, exist_ok=True)
    sdist = fetch_sdist(config, cache)
    version = config["llama-cpp-python"]["version"]
    args = cmake_args(config, backend)
    say(f"building llama-cpp-python {version} ({backend}) once; on 2 cores this takes about 7 minutes")
    say("CMAKE_ARGS=" + " ".join(args))
    with tempfile.TemporaryDirectory(prefix="hearth-llama-", dir=cache) as tmp:
        src = extract(sdist, Path(tmp) / "src")
        patch_source(src, config, backend, key)
        out = Path(tmp) / "out"
        env = {**os.environ, "CMAKE_ARGS": " ".join(args), "FORCE_CMAKE": "1"}
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        t0 = time.monotonic()
        run([sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "-w", str(out), str(src)], env)
        seconds = time.monotonic() - t0
        wheel = next(out.glob("llama_cpp_python-*.whl"))
        modules = check_wheel(wheel, config)
        staged = Path(tmp) / "staged"
        staged.mkdir()
        shutil.move(str(wheel), staged / wheel.name)
        (staged / "build-info.json").write_text(
            json.dumps(
                {
                    "key": key,
                    "backend": backend,
                    "cmake_args": args,
                    "cpu_modules": modules,
                    "build_seconds": round(seconds),
                    "built_on": platform.processor() or machine(),
                },
                indent=2,
            )
            + "\n"
        )
        try:
            os.replace(staged, target)  # atomic: a reader sees no wheel or the whole one
        except OSError:  # another build finished first; keep its wheel
            pass
    say(f"built in {seconds / 60:.1f} min: {target}")
    found = cached_wheel(target)
    assert found is not None
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default=os.environ.get("HEARTH_LLAMA_BACKEND", "cpu"))
    p.add_argument(
        "--cache", type=Path, default=None, help="wheel cache (default: HEARTH_WHEEL_CACHE or ~/.cache/hearth/wheels)"
    )
    p.add_argument("--key", action="store_true", help="print the cache folder this build would use, build nothing")
    a = p.parse_args(argv)
    try:
        config = load_config()
        cache = a.cache or default_cache()
        if a.key:
            print(wheel_dir(cache, config, a.backend))
            return 0
        print(build(config, a.backend, cache))
    except BuildError as e:
        say(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
