"""`hearth doctor`: print what Hearth runs on and whether it works here; exit 0 when all is well.

    hearth doctor [--json] [--model ID|PATH] [--data-dir DIR]

The checks live in app/core/doctor.py; this module only words and prints them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.core.doctor import DoctorReport, diagnose

__all__ = ["add_doctor_parser", "run_doctor"]

_MARK = {"ok": "✓", "warn": "!", "fail": "✗"}


def add_doctor_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="check the llama.cpp build, this machine, the data and the models; self-test the engine",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts and bug reports)")
    p.add_argument(
        "--salvage",
        action="store_true",
        help="copy what can still be read from a damaged database "
        "into a new file beside it (the damaged file is not changed)",
    )


def _size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _llama_lines(llama: dict[str, Any]) -> list[str]:
    b = llama.get("backends") or {}
    build = llama.get("build") or {}
    lines = ["llama.cpp"]
    if build:
        lines.append(
            f"  build       llama-cpp-python {build.get('llama_cpp_python')} · {build.get('backend')} build "
            f"by Hearth (key {build.get('key')})"
        )
        lines.append(f"  flags       {' '.join(build.get('cmake_args', []))}")
    else:
        lines.append(
            f"  build       llama-cpp-python {llama.get('llama_cpp_python') or 'not installed'}, not made by "
            "Hearth's build script (flags unknown)"
        )
    if b:
        lines.append(f"  ggml        {b.get('ggml_version')} (commit {b.get('ggml_commit')})")
        shipped = [m.split("ggml-cpu-")[-1].split(".")[0] for m in b.get("cpu_modules", [])]
        variants = build.get("cpu_variants")
        order: list[str] = variants if isinstance(variants, list) else []
        shipped.sort(key=lambda v: order.index(v) if v in order else len(order))
        chosen = b.get("cpu_module") or ("built in" if not b.get("dynamic") else "none")
        lines.append(f"  CPU code    {chosen}" + (f" (chosen from {', '.join(shipped)})" if shipped else ""))
        lines.append(f"  features    {' '.join(b.get('cpu_features', [])) or '?'}")
        gpus = [d for d in b.get("devices", []) if d.get("kind") in ("gpu", "igpu")]
        lines.append(
            "  GPU         "
            + (
                "; ".join(f"{d['name']} {d['description']} ({_size(d['memory_total'])})" for d in gpus)
                or "none (layers run on the CPU)"
            )
        )
    cut = llama.get("sampler_cut")
    if cut:
        how = "native candidate cut (engine/_pick.c)" if cut == "native" else "NumPy candidate cut (_pick.c not built)"
        lines.append(f"  sampler     {how}")
    if llama.get("ok") and b.get("devices"):
        gpu = next((d for d in b["devices"] if d.get("kind") in ("gpu", "igpu")), None)
        if gpu:  # a GPU backend loaded: did the self-test's layers go there?
            lines.append(
                f"  offload     {llama['gpu_layers']} layers to {gpu['name']}"
                if llama.get("gpu_layers")
                else "  offload     none: llama.cpp would not offload to the GPU; layers run on the CPU"
            )
    if llama.get("ok"):
        lines.append(
            f"  self-test   {Path(llama['model']).name}: loaded in {llama['load_ms']:.0f} ms · "
            f"{llama['prompt_tokens']}-token prompt in {llama['prompt_ms']:.0f} ms · "
            f"{llama['decode_tokens']} tokens at {llama['decode_tokens_per_s']:.0f} tok/s"
        )
    else:
        lines.append(f"  self-test   FAILED: {llama.get('message')}")
    return lines


def _sharing_line(s: dict[str, Any]) -> str:
    if not s.get("supported"):
        return "not on this system (each Hearth process loads its own model)"
    if s.get("problem"):
        return f"off: {s['problem']}"
    host = s.get("host")
    off = (
        " (off here, by HEARTH_NO_SHARE or share_engine in settings.json: these commands load their own)"
        if s.get("off")
        else ""
    )
    if not host:
        return f"none running: the first window, `hearth serve` or `hearth ask` hosts it ({s.get('folder')}){off}"
    queue = (
        f"; {host['answering']} in its queue now (answering or waiting), {host['answered']} answered for "
        "other processes"
        if host.get("answered") is not None
        else ""
    )
    minutes = max(1, round(host["uptime_s"] / 60))
    return f"{host['front_end']} (pid {host['pid']}) runs {host['model']} for {minutes} min{queue}{off}"


def format_report(r: DoctorReport) -> str:
    h, m, d = r.hearth, r.machine, r.data
    db = d["database"]
    lines = [f"Hearth {h['version']} · Python {h['python']} · {h['install']} install ({h['executable']})", ""]
    lines += [*_llama_lines(r.llama), "", "Machine"]
    lines.append(
        f"  CPU         {m['cpu']} · {m['arch']} · {m.get('physical_cores') or '?'} physical cores, "
        f"{m.get('logical_cores') or '?'} logical"
    )
    if m.get("flags") is not None:
        lines.append(f"  CPU flags   {' '.join(m['flags']) or 'none of AVX, AVX2, AVX-512'}")
    lines.append(f"  memory      {_size(m.get('ram_total'))} total, {_size(m.get('ram_available'))} available")
    lines.append(f"  system      {m['os']}")
    lines += ["", f"Data  {d['data_dir']}" + ("" if d["exists"] else " (not created yet)")]
    if db["exists"]:
        schema = db["schema"] + (f", {len(db['pending'])} migration(s) to apply at next start" if db["pending"] else "")
        lines.append(
            f"  database    {Path(db['path']).name} · {_size(db['size_bytes'])} · schema {schema} · "
            f"integrity {db['integrity']} · {_count(db['conversations'], 'conversation')}, "
            f"{_count(db['messages'], 'message')}"
        )
    else:
        lines.append("  database    none yet (made at the first start)")
    lines.append(f"  free disk   {_size(d['free_disk'])}")
    lines += ["", "Shared engine", f"  {_sharing_line(r.sharing)}"]
    lines += ["", "Models on disk"]
    for mod in r.models:
        state = "" if mod["installed"] else " — MISSING"
        lines.append(f"  {mod['name']} ({mod['source']}) {_size(mod['size_bytes'])}  {mod['path']}{state}")
    problems = [f for f in r.findings if f.level != "ok"]
    lines += [""] + [f"{_MARK[f.level]} {f.message}" for f in r.findings if f.level != "ok"]
    lines.append(
        "All is well."
        if not problems
        else ("Hearth should work, with the warnings above." if r.ok else "Hearth will not work as it is: see ✗ above.")
    )
    return "\n".join(lines)


def _salvage(data_dir: Path) -> int:
    import time

    from app.core.paths import db_path
    from store import StoreError
    from store.salvage import salvage

    source = db_path(data_dir)
    if not source.is_file():
        print(f"hearth doctor: there is no database at {source} to salvage.", file=sys.stderr)
        return 2
    dest = source.with_name(f"hearth.db.salvaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        report = salvage(source, dest)
    except StoreError as e:
        print(f"hearth doctor: {e.message}", file=sys.stderr)
        return 2
    print(f"Salvaged into {dest}:")
    for table, n in report.copied.items():
        lost = report.unreadable.get(table, 0) + report.orphans.get(table, 0)
        print(
            f"  {table}: {n:,} rows copied" + (f", {lost:,} could not be read or had lost their parent" if lost else "")
        )
    if report.recreated:
        print(f"  {report.recreated} conversation(s) had lost their title; they are named 'Recovered conversation'.")
    print(
        f"{source} is unchanged. To use the salvaged copy: close Hearth, move {source.name} aside, and rename "
        f"{dest.name} to hearth.db."
    )
    return 0


def run_doctor(args: argparse.Namespace, data_dir: Path, model: Path | None) -> int:
    if getattr(args, "salvage", False):
        return _salvage(data_dir)
    if not args.json:
        print("hearth doctor: checking (the self-test loads a model in a separate process)…", file=sys.stderr)
    report = diagnose(data_dir, model=model, n_threads=args.threads)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2, default=str))
    else:
        print(format_report(report))
    return 0 if report.ok else 1
