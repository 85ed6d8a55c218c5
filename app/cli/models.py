"""`hearth models list | pull ID | verify ID | add PATH | rm ID | info ID|PATH`.

The terminal face of app.models. The list marks each model's kind: a chat model, or an embedding
model (for a person's documents, never loaded to chat). Exit codes: 0 done, 1 the operation failed (network,
verification), 2 bad input (unknown id, not a model file, no confirmation), 130 stopped
with Ctrl-C (a partial download is kept and resumes next time). A model file's metadata (its
name, its template's notes) is untrusted: on a terminal its control characters are shown
escaped (app.cli.terminal).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from app.cli.models_hub import add_hub_parsers, is_hub_ref, run_hub, run_hub_info, run_hub_pull
from app.cli.terminal import for_stream
from app.core.errors import DownloadError, LibraryError
from app.core.models import DownloadProgress, ModelLibrary, Phase
from app.core.settings import DEFAULT_CONTEXT
from engine.errors import HearthError

__all__ = ["add_models_parser", "run_models"]


def add_models_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    models = sub.add_parser("models", parents=[common], help="list, download, check, add and remove models")
    verbs = models.add_subparsers(dest="verb", metavar="{list,search,pull,verify,add,rm,info,template,login,logout}")
    verbs.add_parser("list", parents=[common], help="the catalog and your models: size, state, memory fit")
    pull = verbs.add_parser(
        "pull", parents=[common], help="download a catalog model or hf.co/OWNER/REPO[:QUANT] (resumes, verifies sha256)"
    )
    pull.add_argument("id")
    add_hub_parsers(verbs, common)
    verify = verbs.add_parser("verify", parents=[common], help="re-check an installed model's sha256")
    verify.add_argument("id")
    add = verbs.add_parser("add", parents=[common], help="add a GGUF file by path (it stays where it is)")
    add.add_argument("path")
    rm = verbs.add_parser("rm", parents=[common], help="remove a model and free its disk space (asks first)")
    rm.add_argument("id")
    rm.add_argument("--yes", "-y", action="store_true", help="do not ask")
    info = verbs.add_parser("info", parents=[common], help="a model's metadata and whether it fits in memory")
    template = verbs.add_parser(
        "template",
        parents=[common],
        help="choose the chat template a model is used with (for a file that has none, or the wrong one)",
    )
    template.add_argument("target", metavar="MODEL", help="a model id or a path to a GGUF file")
    template.add_argument("name", help="chatml, gemma, llama3, phi3, mistral, or auto (the file's own)")
    # dest "target": "model" is the common --model option's, which would overwrite it.
    info.add_argument(
        "target", metavar="MODEL", help="a model id or a path to a GGUF file (--ctx N: the context to estimate for)"
    )


def run_models(args: argparse.Namespace, library: ModelLibrary) -> int:
    verb = getattr(args, "verb", None)
    try:
        if verb in (None, "list"):
            return _list(library)
        if verb in ("search", "login", "logout"):
            return run_hub(args, library)
        if verb == "pull" and is_hub_ref(args.id):
            return run_hub_pull(library, args.id, args.ctx or DEFAULT_CONTEXT)
        if verb == "pull":
            return _pull(library, args.id)
        if verb == "verify":
            return _verify(library, args.id)
        if verb == "add":
            return _add(library, args.path)
        if verb == "rm":
            return _rm(library, args.id, args.yes)
        if verb == "info" and is_hub_ref(args.target):
            return run_hub_info(args.target, args.ctx or DEFAULT_CONTEXT)
        if verb == "info":
            return _info(library, args.target, args.ctx or DEFAULT_CONTEXT)
        if verb == "template":
            name = None if args.name == "auto" else args.name
            path = library.set_template(args.target, name)
            print(
                f"{path.name} will be used with "
                + (f"the {name} chat template" if name else "its own chat template")
                + " from its next load.",
                file=sys.stderr,
            )
            return 0
    except HearthError as e:  # the library refused, or a file is not a model Hearth can read
        return _fail(e.message)
    raise AssertionError(verb)


def _fail(message: str, code: int = 2) -> int:
    print(for_stream(sys.stderr)(f"hearth: error: {message}"), file=sys.stderr)
    return code


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _list(library: ModelLibrary) -> int:
    from engine.fit import available_memory

    free = available_memory()
    rows = [("ID", "NAME", "KIND", "SIZE", "STATE")]
    for m in library.models():
        if m.source == "bundled":
            state = "bundled" if m.installed else "bundled, missing (run the set-up again)"
        elif m.source == "added":
            state = f"added: {m.path}" if m.installed else f"added, file missing: {m.path}"
        elif m.installed:
            state = "downloaded"
        elif m.partial_bytes:
            state = f"paused at {m.partial_bytes * 100 // max(1, m.size_bytes)}% (pull again to resume)"
        else:
            state = "not downloaded"
        if m.entry is not None:
            need = m.entry.recommended_memory_gb * 1e9
            state += " · " + (
                f"needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB free" if need > free * 0.8 else "fits in memory"
            )
        rows.append((m.id, m.name, m.kind, _gb(m.size_bytes) if m.size_bytes else "-", state))
    shown = for_stream(sys.stdout)
    rows = [(shown(a), shown(b), k, c, shown(d)) for a, b, k, c, d in rows]  # an added file's name is its metadata's
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}")
    return 0


class _ProgressLine:
    """One updating line on a terminal; a line every few seconds when stderr is a file."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, p: DownloadProgress) -> None:
        now = time.monotonic()
        final = p.phase is Phase.DONE or p.done_bytes >= p.total_bytes
        if not self.tty and now - self._last < 2.0 and not final and p.phase is not Phase.CONNECTING:
            return
        self._last = now
        pct = p.done_bytes * 100 / p.total_bytes if p.total_bytes else 0.0
        if p.phase is Phase.DOWNLOADING:
            eta = p.eta_s
            text = (
                f"downloading {pct:5.1f}%  {_gb(p.done_bytes)} of {_gb(p.total_bytes)}  "
                f"{p.bytes_per_s / 1e6:.1f} MB/s  " + (f"{eta:.0f} s left" if eta is not None else "")
            )
            if p.note:
                text += f"  ({p.note})"
        elif p.phase is Phase.VERIFYING:
            text = f"verifying sha256 {pct:5.1f}%"
        elif p.phase is Phase.CONNECTING:
            text = "connecting…"
        else:
            text = "done"
        sys.stderr.write(("\r\x1b[K" + text) if self.tty else text + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def run_download(download: Any) -> tuple[int, object]:
    """Run one Download in a thread so that Ctrl-C cancels it cleanly: (exit code, its path). A
    DownloadError is said here (130 when cancelled; 2 for what a person must fix: not found, busy,
    gated); anything else is raised."""
    result: dict[str, object] = {}
    # An Event, not Thread.join: a join interrupted by Ctrl-C can leave the thread looking finished.
    finished = threading.Event()

    def work() -> None:
        try:
            result["path"] = download.run()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which re-raises or reports it
            result["error"] = e
        finally:
            finished.set()

    threading.Thread(target=work, name="download", daemon=True).start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        download.cancel()
        finished.wait(30)
    error = result.get("error")
    if isinstance(error, DownloadError):
        if error.code == "cancelled":
            print(f"hearth: {error.message}", file=sys.stderr)
            return 130, None
        return _fail(error.message, 2 if error.code in ("not_found", "busy", "gated") else 1), None
    if error is not None:
        raise error  # type: ignore[misc]
    return 0, result.get("path")


def _pull(library: ModelLibrary, model_id: str) -> int:
    model = library.get(model_id)
    if model.installed:
        print(f"{model.name} is already installed at {model.path}.", file=sys.stderr)
        return 0
    line = _ProgressLine()
    download = library.download(model_id, on_progress=line)
    if download.expected_sha256 is None:
        print(
            f"note: the catalog has no sha256 for {model.name}; the Hub's LFS hash is used to verify it.",
            file=sys.stderr,
        )
    code, path = run_download(download)
    line.end()
    if code:
        return code
    library.record_download(model_id, download)
    resumed = f" (resumed from {_gb(download.resumed_from)})" if download.resumed_from else ""
    print(f"{model.name}: downloaded and verified{resumed}: {path}", file=sys.stderr)
    if model.kind == "embedding":
        print(f"use it for your documents with: hearth docs model {model_id}", file=sys.stderr)
    else:
        print(f"use it with: hearth --model {model_id}", file=sys.stderr)
    return 0


def _verify(library: ModelLibrary, model_id: str) -> int:
    model = library.get(model_id)
    total = model.size_bytes
    done = 0
    tty = sys.stderr.isatty()

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if tty:
            sys.stderr.write(f"\r\x1b[Kverifying sha256 {done * 100 / max(1, total):5.1f}%")

    result = library.verify(model_id, on_bytes)
    if tty:
        sys.stderr.write("\n")
    print(for_stream(sys.stdout)(result.message))
    return 0 if result.ok else 1


def _print_info(info: object, fit: object | None) -> None:
    shown = for_stream(sys.stdout)
    for label, value in info.describe():  # type: ignore[attr-defined]
        print(shown(f"{label + ':':<16}{value}"))
    if fit is not None:
        print(f"{'Memory:':<16}{fit.message}")  # type: ignore[attr-defined]


def _read(path: Path) -> object:
    from engine.gguf_info import read_gguf_info

    return read_gguf_info(path)  # ModelLoadError for a file that is not a readable GGUF


def _fit(info: object, n_ctx: int) -> object:
    from engine.fit import available_memory, estimate_fit, gpu_memory

    return estimate_fit(
        info,  # type: ignore[arg-type]
        n_ctx=n_ctx,
        available_bytes=available_memory(),
        gpu=gpu_memory(),
        gpu_offload_supported=False,
    )


def _add(library: ModelLibrary, path: str) -> int:
    from engine.errors import ModelLoadError

    known = library.by_path(path)
    try:
        model, info = library.add(path)
    except (ModelLoadError, LibraryError) as e:
        return _fail(e.message)
    _print_info(info, _fit(info, DEFAULT_CONTEXT))
    said = f"already in your models as {model.id}" if known is not None else f"added as {model.id}"
    print(f"{said}: use it with: hearth --model {model.id}", file=sys.stderr)
    return 0


def _info(library: ModelLibrary, model: str, n_ctx: int) -> int:
    from engine.template_choice import TEMPLATE_NAMES, choose_template

    path = library.resolve(model, kind=None)
    info = _read(path)
    _print_info(info, _fit(info, n_ctx))
    known = library.by_path(path)
    if known is not None and known.kind == "embedding" and known.entry is not None:
        # Its vectors are for a person's documents: no chat template is ever applied to it.
        print(f"{'Used for:':<16}your documents (embedding model, {known.entry.dimensions} dimensions)")
        return 0
    choice = choose_template(
        info.chat_template,  # type: ignore[attr-defined]
        architecture=info.architecture,  # type: ignore[attr-defined]
        chosen=library.template_for(path),
        file_name=path.name,
        model_name=info.name or "",  # type: ignore[attr-defined]
    )
    used = "the file's own" if choice.name == "model" else TEMPLATE_NAMES[choice.name]
    print(for_stream(sys.stdout)(f"{'Chat used:':<16}{used}" + (f" — {choice.note}" if choice.note else "")))
    return 0


def _rm(library: ModelLibrary, model_id: str, yes: bool) -> int:
    model = library.get(model_id)
    if model.source == "bundled":
        return _fail(f"{model.name} comes with Hearth and cannot be removed.")
    if model.source == "added":
        what = f"Remove {model.name} from Hearth's list? The file stays at {model.path}."
    else:
        on_disk = (model.size_bytes if model.installed else 0) + model.partial_bytes
        what = f"Delete {model.name} ({model.path}) and free {_gb(on_disk)}?"
    if not yes:
        if not sys.stdin.isatty():
            return _fail(f"{what} Removing asks first: run it in a terminal, or add --yes.")
        answer = input(f"{what} [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing removed", file=sys.stderr)
            return 0
    freed = library.remove(model_id)
    if model.source == "added":
        print(f"removed {model.name} from your models; the file stays at {model.path}", file=sys.stderr)
    else:
        print(f"removed {model.name}; freed {_gb(freed)}", file=sys.stderr)
    return 0
