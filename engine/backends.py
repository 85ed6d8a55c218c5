"""llama.cpp's compute backends: load them (once per engine process) and say which were chosen.

Hearth builds llama.cpp with GGML_BACKEND_DL (packaging/llama/build.toml): the CPU code is one
module per instruction-set level (libggml-cpu-haswell.so, -icelake, -zen4, …) and a GPU
backend is a module too. Nothing can run until they are loaded. ggml scores every CPU module
against the CPU it runs on (cpuid) and loads the best one; llama-cpp-python 0.3.36 never asks
it to (its issue #2069), so the engine does, before the first model is loaded.

Also reports what was chosen (the CPU module, its features, the devices, the build), for
`hearth doctor` and ModelInfo. Imported only inside an engine process (it loads native code).
"""

from __future__ import annotations

import ctypes
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["BackendReport", "Device", "load_backends"]

_DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}


@dataclass(frozen=True, slots=True)
class Device:
    name: str  # ggml's name, e.g. "CPU", "CUDA0", "Vulkan0"
    description: str  # e.g. the CPU model or "NVIDIA H200"
    kind: str  # cpu | gpu | igpu | accel
    memory_free: int
    memory_total: int


@dataclass(frozen=True, slots=True)
class BackendReport:
    """What llama.cpp runs on in this process."""

    lib_dir: str
    dynamic: bool  # built with GGML_BACKEND_DL (Hearth's build); False: a build with backends linked in
    cpu_module: str | None  # the CPU level module ggml chose, e.g. "libggml-cpu-icelake.so"
    cpu_modules: tuple[str, ...]  # every CPU level module shipped
    cpu_features: tuple[str, ...]  # the features the chosen CPU code was compiled with (AVX2, AVX512, …)
    devices: tuple[Device, ...]
    ggml_version: str
    ggml_commit: str
    build: dict[str, Any] | None  # llama_cpp/hearth_build.json, written by packaging/llama/build.py

    @property
    def gpu_devices(self) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.kind in ("gpu", "igpu"))


def _lib_dir(llama_cpp: ModuleType) -> Path:
    # llama-cpp-python's own rule: LLAMA_CPP_LIB_PATH, else the package's lib/ folder.
    base = getattr(getattr(llama_cpp, "llama_cpp", None), "_base_path", None)
    return Path(base) if base else Path(str(llama_cpp.__file__)).parent / "lib"


def _loaded_libraries() -> list[str]:
    """Paths of the shared libraries loaded in this process (Linux, macOS); empty elsewhere."""
    if sys.platform == "darwin":
        dyld = ctypes.CDLL(None)
        dyld._dyld_image_count.restype = ctypes.c_uint32
        dyld._dyld_get_image_name.restype = ctypes.c_char_p
        dyld._dyld_get_image_name.argtypes = [ctypes.c_uint32]
        return [(dyld._dyld_get_image_name(i) or b"").decode() for i in range(dyld._dyld_image_count())]
    try:
        with open("/proc/self/maps") as f:
            return sorted(
                {
                    fields[5].strip()
                    for fields in (line.split(None, 5) for line in f)
                    if len(fields) == 6 and fields[5].startswith("/")
                }
            )
    except OSError:
        return []


def _is_libggml(name: str) -> bool:
    """libggml.so, libggml.so.0, libggml.0.dylib, ggml.dll: the loader, not ggml-base or a backend."""
    return re.fullmatch(r"(lib)?ggml(\.\d+)*\.(so|dylib|dll)(\.\d+)*", name) is not None


def _ggml(lib_dir: Path) -> ctypes.CDLL:
    """The libggml that libllama itself uses (the backend registry lives in it).

    A wheel holds copies rather than symlinks (libggml.so, .so.0, .so.0.x), and opening another
    copy would load a second libggml with an empty registry. So open exactly the file already
    loaded; on Windows, where DLLs have one name, the loader resolves the name to it.
    """
    for path in _loaded_libraries():
        if _is_libggml(Path(path).name):
            return ctypes.CDLL(path)
    for name in ("libggml.so", "libggml.dylib", "ggml.dll", "libggml.dll"):
        if (lib_dir / name).exists():
            return ctypes.CDLL(str(lib_dir / name))
    raise OSError(f"libggml was not found in {lib_dir}")


def _declare(lib: ctypes.CDLL) -> None:
    p, s = ctypes.c_void_p, ctypes.c_char_p
    for name, res, args in [
        ("ggml_backend_load_all_from_path", None, [s]),
        ("ggml_backend_reg_count", ctypes.c_size_t, []),
        ("ggml_backend_dev_count", ctypes.c_size_t, []),
        ("ggml_backend_dev_get", p, [ctypes.c_size_t]),
        ("ggml_backend_dev_name", s, [p]),
        ("ggml_backend_dev_description", s, [p]),
        ("ggml_backend_dev_type", ctypes.c_int, [p]),
        ("ggml_backend_dev_memory", None, [p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]),
        ("ggml_version", s, []),
        ("ggml_commit", s, []),
    ]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args


def _devices(lib: ctypes.CDLL) -> tuple[Device, ...]:
    out = []
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        out.append(
            Device(
                name=(lib.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
                description=(lib.ggml_backend_dev_description(dev) or b"").decode(errors="replace").strip(),
                kind=_DEVICE_TYPES.get(lib.ggml_backend_dev_type(dev), "other"),
                memory_free=free.value,
                memory_total=total.value,
            )
        )
    return tuple(out)


def cpu_features(system_info: str) -> tuple[str, ...]:
    """Features set to 1 in the CPU part of llama_print_system_info() ("CPU : AVX2 = 1 | …")."""
    feats: list[str] = []
    backend = ""
    for piece in system_info.split("|"):
        if " : " in piece:  # a new backend's part starts: "CUDA : ARCHS = 900 | …"
            backend, _, piece = piece.partition(" : ")
            backend = backend.strip()
        name, _, value = piece.partition("=")
        if backend == "CPU" and value.strip() == "1":
            feats.append(name.strip())
    return tuple(feats)


def _build_info(llama_cpp: ModuleType) -> dict[str, Any] | None:
    path = Path(str(llama_cpp.__file__)).parent / "hearth_build.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def load_backends(llama_cpp: ModuleType) -> BackendReport:
    """Load llama.cpp's backends if nothing has (idempotent), and report what is in use."""
    lib_dir = _lib_dir(llama_cpp)
    ggml = _ggml(lib_dir)
    _declare(ggml)
    modules = tuple(sorted(p.name for p in lib_dir.glob("*ggml-cpu-*") if p.is_file()))
    linked_in = ggml.ggml_backend_dev_count() > 0  # a build without GGML_BACKEND_DL, or loaded already
    if not linked_in:
        # ggml logs each module it loads to stderr through llama-cpp-python's logger, which
        # prints everything until a Llama() sets it; only errors belong on Hearth's stderr.
        if logging.getLogger("llama-cpp-python").level == logging.NOTSET:
            logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        # ggml scores each libggml-cpu-*.so against this CPU and keeps the best; GPU modules
        # (libggml-cuda.so, …) load only if their runtime (driver, Vulkan loader) is present.
        ggml.ggml_backend_load_all_from_path(str(lib_dir).encode())
    chosen = next((Path(p).name for p in _loaded_libraries() if "ggml-cpu" in Path(p).name), None)
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    return BackendReport(
        lib_dir=str(lib_dir),
        dynamic=bool(modules) or not linked_in,
        cpu_module=chosen,
        cpu_modules=modules,
        cpu_features=cpu_features(info),
        devices=_devices(ggml),
        ggml_version=(ggml.ggml_version() or b"").decode(),
        ggml_commit=(ggml.ggml_commit() or b"").decode(),
        build=_build_info(llama_cpp),
    )
