"""`hearth doctor`'s checks: what Hearth runs on, and whether it works here. No Qt, no printing.

Collects the llama.cpp build (from a self-test in a throwaway process: engine.selftest), the
machine, the data folder and database (read-only: store.health), and the models on disk, and
turns them into findings, each a sentence a person can act on. Touches nothing it inspects:
safe while the window or another `hearth` command runs on the same data.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.core.paths import db_path, default_model_path

__all__ = ["DoctorReport", "Finding", "cpu_facts", "diagnose", "hearth_version", "install_kind"]

# CPU flags that decide which llama.cpp CPU code runs (Linux /proc/cpuinfo names).
_FLAGS = (
    "sse4_2",
    "avx",
    "f16c",
    "fma",
    "avx2",
    "bmi2",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vbmi",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
_LOW_DISK = 1 << 30


@dataclass(frozen=True, slots=True)
class Finding:
    level: Literal["ok", "warn", "fail"]
    area: str  # llama.cpp | machine | data | models
    message: str


@dataclass(frozen=True)
class DoctorReport:
    hearth: dict[str, Any]
    machine: dict[str, Any]
    data: dict[str, Any]
    models: list[dict[str, Any]]
    llama: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    sharing: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(f.level == "fail" for f in self.findings)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "hearth": self.hearth,
            "machine": self.machine,
            "data": self.data,
            "models": self.models,
            "llama_cpp": self.llama,
            "sharing": self.sharing,
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }


def install_kind() -> str:
    """How this Hearth was installed: bundle (PyInstaller), source (a checkout's virtualenv) or package."""
    if getattr(sys, "frozen", False):
        return "bundle"
    root = Path(__file__).resolve().parents[2]  # app/core/doctor.py -> the checkout
    return "source" if (root / "packaging" / "bootstrap.sh").exists() else "package"


def hearth_version() -> str:
    """This Hearth's version, from its installed metadata (a bundle carries it too)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hearth")
    except PackageNotFoundError:
        return "unknown"


def cpu_facts() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    try:
        import psutil

        mem = psutil.virtual_memory()
        physical = psutil.cpu_count(logical=False)
        ram = {"ram_total": mem.total, "ram_available": mem.available}
    except (ImportError, OSError, RuntimeError):  # psutil cannot read this system: report what is known
        physical, ram = None, {}
    return {
        "cpu": model,
        "arch": platform.machine(),
        "os": platform.platform(terse=True),
        "physical_cores": physical,
        "logical_cores": os.cpu_count(),
        "flags": [f for f in _FLAGS if f in flags] if flags else None,
        **ram,
    }


def _llama_build() -> dict[str, Any]:
    """llama-cpp-python's version and Hearth's build record, read without loading native code."""
    import importlib.util
    import json
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, Any] = {}
    try:
        out["llama_cpp_python"] = version("llama_cpp_python")
    except PackageNotFoundError:
        out["llama_cpp_python"] = None
    spec = importlib.util.find_spec("llama_cpp")
    if spec is not None and spec.origin:
        try:
            out["build"] = json.loads((Path(spec.origin).parent / "hearth_build.json").read_text())
        except (OSError, ValueError):
            out["build"] = None
    return out


def _rebuild_hint() -> str:
    kind = install_kind()
    if kind == "source":
        return (
            "Rebuild it for every CPU: `rm -rf ~/.cache/hearth/wheels/llama-cpp-python-*` and run "
            "`bash packaging/bootstrap.sh run` again (packaging/llama/build.py builds a portable llama.cpp)."
        )
    if kind == "bundle":
        return (
            "This bundle's llama.cpp does not run on this CPU: report it with the output of "
            "`hearth doctor --json`, and meanwhile set Hearth up from source (README)."
        )
    return (
        "Reinstall llama-cpp-python built by Hearth's packaging/llama/build.py, which runs on any x86-64 CPU, "
        "instead of a build for one machine."
    )


def _llama_findings(llama: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    b = llama.get("backends") or {}
    if not llama.get("ok"):
        out.append(
            Finding(
                "fail",
                "llama.cpp",
                f"The self-test failed: {llama.get('message')} "
                f"The llama.cpp build does not run on this machine. {_rebuild_hint()}",
            )
        )
    if any(str(f).startswith("AMX") for f in b.get("cpu_features", ())):
        out.append(
            Finding(
                "fail",
                "llama.cpp",
                "llama.cpp runs its AMX kernels, which crash on Intel Xeons with AMX "
                f"(llama.cpp #20824). {_rebuild_hint()}",
            )
        )
    if b and not b.get("dynamic"):
        out.append(
            Finding(
                "warn",
                "llama.cpp",
                "This llama.cpp was not built by Hearth's build script: it may run "
                f"only on the CPU it was built on. {_rebuild_hint()}",
            )
        )
    elif b and not b.get("cpu_module"):
        out.append(
            Finding("fail", "llama.cpp", f"No CPU backend could be loaded from {b.get('lib_dir')}. {_rebuild_hint()}")
        )
    if llama.get("sampler_cut") == "numpy":
        out.append(
            Finding(
                "warn",
                "llama.cpp",
                "Hearth's native sampler cut (engine/_pick.c) was not built, so NumPy picks each token's "
                "candidates: the same answers, about 0.1 ms a token slower. Install again where a C compiler "
                "and Python's headers are present (bash packaging/bootstrap.sh run builds it).",
            )
        )
    if llama.get("ok") and not out:
        out.append(Finding("ok", "llama.cpp", "The self-test loaded a model, evaluated a prompt and decoded tokens."))
    return out


def _data(data_dir: Path) -> tuple[dict[str, Any], list[Finding]]:
    from store.health import check_database

    findings: list[Finding] = []
    probe = data_dir if data_dir.exists() else next((p for p in data_dir.parents if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    health = check_database(db_path(data_dir))
    if health.problem:
        findings.append(Finding("fail", "data", health.problem))
    elif health.exists:
        findings.append(Finding("ok", "data", "The database is readable and intact."))
    if data_dir.exists() and not data_dir.is_dir():
        findings.append(
            Finding(
                "fail",
                "data",
                f"{data_dir} is a file, not a folder, so Hearth cannot keep its data "
                "there. Choose another folder with --data-dir (or HEARTH_DATA_DIR).",
            )
        )
    if data_dir.is_dir() and not os.access(data_dir, os.W_OK):
        findings.append(
            Finding(
                "warn",
                "data",
                f"{data_dir} is read-only: Hearth can show and back up its "
                "conversations but cannot save new answers. Make it writable, or copy "
                "it to a writable folder (--data-dir).",
            )
        )
    if free < _LOW_DISK:
        findings.append(
            Finding(
                "warn",
                "data",
                f"Only {free / 1e6:.0f} MB are free where Hearth keeps its data "
                f"({probe}): answers will stream but may fail to save. Free some space.",
            )
        )
    data = {
        "data_dir": str(data_dir),
        "exists": data_dir.exists(),
        "free_disk": free,
        "database": dataclasses.asdict(health) | {"schema": health.schema},
    }
    return data, findings


def _models(data_dir: Path) -> tuple[list[dict[str, Any]], list[Finding]]:
    from app.core.errors import CatalogError, LibraryError
    from app.core.models import ModelLibrary

    findings: list[Finding] = []
    try:
        library = ModelLibrary(data_dir, bundled_path=default_model_path())
        models = library.models()
    except CatalogError as e:
        return [], [Finding("fail", "models", f"The model catalog is broken: {e}")]
    except LibraryError as e:
        return [], [Finding("fail", "models", e.message)]
    out = []
    for m in models:
        if not (m.installed or m.source in ("bundled", "added")):
            continue
        out.append(
            {
                "id": m.id,
                "name": m.name,
                "source": m.source,
                "installed": m.installed,
                "size_bytes": m.size_bytes,
                "path": str(m.path) if m.path else None,
            }
        )
        if m.source == "bundled" and not m.installed:
            findings.append(
                Finding(
                    "fail",
                    "models",
                    f"The bundled model is missing ({m.path}). Run the set-up again (README), or reinstall Hearth.",
                )
            )
        elif m.source == "added" and not m.installed:
            findings.append(
                Finding(
                    "warn",
                    "models",
                    f"The file of {m.name} is gone ({m.path}): add it again or `hearth models rm {m.id}`.",
                )
            )
    return out, findings


def diagnose(data_dir: Path, *, model: Path | None = None, n_threads: int | None = None) -> DoctorReport:
    """Run every check; the self-test uses `model` (default: the bundled model)."""
    from engine.selftest import run_selftest
    from engine.threads import default_threads

    hearth = {
        "version": hearth_version(),
        "python": platform.python_version(),
        "install": install_kind(),
        "executable": sys.executable,
    }
    machine = cpu_facts()
    data, data_findings = _data(data_dir)
    models, model_findings = _models(data_dir)
    test_model = model or default_model_path()
    if not test_model.is_file():
        llama: dict[str, Any] = {
            "ok": False,
            "step": "load",
            "message": f"there is no model file at {test_model}",
            "model": str(test_model),
        }
    else:
        result = run_selftest(str(test_model), n_threads=n_threads or default_threads())
        llama = dataclasses.asdict(result) | {"model": str(test_model)}
    llama |= _llama_build()
    from engine.sampler import PICK

    llama["sampler_cut"] = PICK  # engine/_pick.c built ("native") or not ("numpy")
    findings = _llama_findings(llama) + data_findings + model_findings
    if (
        machine.get("flags")
        and "amx_int8" in machine["flags"]
        and not any(f.area == "llama.cpp" and f.level == "fail" for f in findings)
    ):
        findings.append(
            Finding(
                "ok",
                "machine",
                "This CPU has AMX; Hearth's llama.cpp leaves its AMX kernels out (they crash) and uses AVX-512.",
            )
        )
    return DoctorReport(hearth, machine, data, models, llama, findings, _sharing(data_dir))


def _sharing(data_dir: Path) -> dict[str, Any]:
    """Whether a process hosts the shared engine (app.core.engine_share): which, its model, its
    queue; `off`: this data folder's commands do not share (HEARTH_NO_SHARE, or settings.json)."""
    import os

    from app.core.engine_share import live_host, share_dir, sharing_supported, uptime
    from app.core.errors import ServeError
    from app.core.settings import SettingsFile

    off = bool(os.environ.get("HEARTH_NO_SHARE")) or not SettingsFile(data_dir).load().share_engine
    out: dict[str, Any] = {"supported": sharing_supported(), "off": off}
    if not out["supported"]:
        return out
    try:
        out["folder"] = str(share_dir())
    except ServeError as e:
        out["problem"] = e.message
        return out
    info = live_host()
    if info is None:
        out["host"] = None
        return out
    host: dict[str, Any] = {
        "pid": info.pid,
        "front_end": info.front_end,
        "model": info.model_id,
        "uptime_s": round(uptime(info)),
    }
    try:
        import httpx

        from engine.pipe_transport import transport_for  # a Unix socket, or a named pipe on Windows

        with httpx.Client(transport=transport_for(info.socket), timeout=2.0) as client:
            metrics = client.get("http://localhost/metrics").json()
            served = client.get("http://localhost/v1/models").json()
        host["answering"] = metrics.get("running", 0)
        host["answered"] = metrics.get("requests", 0)
        local = [m["id"].removeprefix("local/") for m in served.get("data", []) if m.get("id", "").startswith("local/")]
        host["model"] = local[0] if local else "no model loaded now"  # the window may have switched
    except (httpx.HTTPError, ValueError, AttributeError):
        host["answering"] = host["answered"] = None
    out["host"] = host
    return out
