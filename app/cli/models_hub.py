"""`hearth models search | login | logout`, and `models pull | info hf.co/OWNER/REPO[:QUANT|:FILE]`,
and `--model hf.co/...` for the commands that load a model: the terminal face of
app.core.models.hub_* (search the Hub, read a header before downloading, pull by name).

Exit codes as app.cli.models: 0 done, 1 the Hub or the download failed (network, 429,
verification), 2 bad input (no such repo or quantization, gated, a model this build cannot
run, no confirmation), 130 stopped with Ctrl-C (what was downloaded is kept and resumes).
Everything the Hub sends (repo names, licences, templates' notes) is untrusted: on a terminal
its control characters are shown escaped (app.cli.terminal). The token is never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from app.cli.terminal import for_stream
from app.core.models import DownloadProgress, ModelLibrary
from app.core.models.hub_names import parse_ref
from engine.errors import HearthError

if TYPE_CHECKING:  # the Hub's modules load when a Hub command runs, not for every `hearth` command
    from app.core.models.hub_client import HubClient
    from app.core.models.hub_pull import PullPlan

__all__ = ["add_hub_parsers", "is_hub_ref", "pull_for_model", "run_hub", "run_hub_info", "run_hub_pull"]

_FAILED_CODES = ("network", "slow", "rate_limited", "server", "bad_answer")


def is_hub_ref(text: str | None) -> bool:
    return bool(text) and parse_ref(text or "") is not None


def add_hub_parsers(verbs: Any, common: argparse.ArgumentParser) -> None:
    search = verbs.add_parser("search", parents=[common], help="search the Hugging Face Hub for GGUF models")
    search.add_argument("query", help="words in the repo's name, e.g. 'qwen 7b instruct'")
    search.add_argument("--sort", choices=("downloads", "likes", "recent"), default="downloads")
    search.add_argument("--limit", type=int, default=20, help="at most this many repos (1-100, default 20)")
    search.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    login = verbs.add_parser(
        "login", parents=[common], help="keep a Hugging Face token in the system keychain (for gated/private repos)"
    )
    login.add_argument("--token-stdin", action="store_true", help="read the token from standard input")
    verbs.add_parser("logout", parents=[common], help="forget the Hugging Face token")


def run_hub(args: argparse.Namespace, library: ModelLibrary) -> int:
    """`search`, `login`, `logout`."""
    try:
        if args.verb == "search":
            return _search(args.query, args.sort, args.limit, args.json)
        if args.verb == "login":
            return _login(args.token_stdin)
        if args.verb == "logout":
            from app.core.models.hub_token import delete_token

            said = "the Hugging Face token was removed" if delete_token() else "no Hugging Face token was saved"
            print(f"hearth: {said}.", file=sys.stderr)
            return 0
    except HearthError as e:
        return _fail(e.message, 1 if e.code in _FAILED_CODES else 2)
    raise AssertionError(args.verb)


def _fail(message: str, code: int = 2) -> int:
    print(for_stream(sys.stderr)(f"hearth: error: {message}"), file=sys.stderr)
    return code


def _client() -> HubClient:
    from app.core.models.hub_client import HubClient
    from app.core.models.hub_token import load_token

    return HubClient(token=load_token())


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


# -- search ------------------------------------------------------------------------------
def _search(query: str, sort: Any, limit: int, as_json: bool) -> int:
    repos = _client().search(query, sort=sort, limit=limit)
    if as_json:
        print(json.dumps([_as_dict(r) for r in repos], indent=1))
        return 0
    if not repos:
        print(f"No GGUF models on the Hub match {query!r}.", file=sys.stderr)
        return 0
    shown = for_stream(sys.stdout)
    rows = [("REPO", "DOWNLOADS", "LIKES", "LICENCE", "UPDATED")]
    for r in repos:
        gated = " (gated)" if r.gated else ""
        updated = (r.last_modified or "")[:10]
        rows.append((shown(r.repo) + gated, f"{r.downloads:,}", f"{r.likes:,}", shown(r.license or "-"), updated))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:<{widths[3]}}  {row[4]}")
    print("see one's quantizations and what fits: hearth models info hf.co/REPO", file=sys.stderr)
    return 0


def _as_dict(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__slots__}


# -- info and pull -------------------------------------------------------------------------
def _plan(text: str, n_ctx: int) -> PullPlan:
    from app.core.models.hub_pull import discover
    from engine.fit import available_memory, gpu_memory

    return discover(_client(), text, n_ctx=n_ctx, available_bytes=available_memory(), gpu=gpu_memory())


def run_hub_info(text: str, n_ctx: int) -> int:
    """`hearth models info hf.co/...`: the quantizations, what fits, the chosen one's header."""
    try:
        plan = _plan(text, n_ctx)
    except HearthError as e:
        return _fail(e.message, 1 if e.code in _FAILED_CODES else 2)
    _print_plan(plan)
    return 0 if plan.header.runnable else 2


def _print_plan(plan: PullPlan) -> None:
    from engine.fit import Verdict

    shown = for_stream(sys.stdout)
    repo = plan.listing.repo
    print(shown(f"{'Repo:':<16}{repo.repo} by {repo.author}" + (" (gated)" if repo.gated else "")))
    print(shown(f"{'Licence:':<16}{repo.license or 'not stated'}"))
    print(f"{'Downloads:':<16}{repo.downloads:,}   likes {repo.likes:,}   updated {(repo.last_modified or '?')[:10]}")
    print("Quantizations (fit for this computer, at the context size of --ctx):")
    for f in plan.fits:
        mark = "  <- recommended" if plan.recommended is not None and f.quant == plan.recommended.quant else ""
        parts = f" in {len(f.quant.files)} parts" if f.quant.split else ""
        verdict = {Verdict.FITS: "fits", Verdict.TIGHT: "tight", Verdict.TOO_BIG: "too big"}[f.verdict]
        basis = {"header": "its header", "scaled": "scaled from the header", "size": "rough, from its size"}[f.basis]
        print(shown(f"  {f.quant.quant:<12}{_gb(f.quant.size):>9}{parts}  {verdict} ({basis}){mark}"))
    info = plan.header.info
    print(f"Header of {plan.chosen.quant} (read without downloading the model):")
    for label, value in info.describe():
        if label != "File size":
            print(shown(f"  {label + ':':<16}{value}"))
    print(shown(f"  {'Runs here:':<16}{plan.header.support_message()}"))
    print(shown(f"  {'Memory:':<16}{plan.chosen_fit.message}"))
    print(f"  {'Header read:':<16}{plan.header.bytes_downloaded:,} bytes in {plan.header.requests} requests")


def run_hub_pull(library: ModelLibrary, text: str, n_ctx: int) -> int:
    """`hearth models pull hf.co/OWNER/REPO[:QUANT|:FILE]`."""
    from app.core.models.hub_pull import find_installed

    ref = parse_ref(text)
    assert ref is not None
    installed = find_installed(library, ref)
    if installed is not None:
        print(f"{installed.id} is already downloaded: {installed.path}", file=sys.stderr)
        return 0
    try:
        plan = _plan(text, n_ctx)
    except HearthError as e:
        return _fail(e.message, 1 if e.code in _FAILED_CODES else 2)
    return _pull(library, plan)


def _pull(library: ModelLibrary, plan: PullPlan) -> int:
    from app.core.models.hub_pull import downloads, record
    from app.core.models.hub_token import load_token
    from engine.fit import Verdict

    warned = for_stream(sys.stderr)
    if not plan.header.runnable:
        return _fail(f"{plan.model_id}: {plan.header.support_message()}. Nothing was downloaded.")
    size = f"{_gb(plan.chosen.size)}" + (f" in {len(plan.chosen.files)} parts" if plan.chosen.split else "")
    print(warned(f"{plan.model_id}: {size}, {plan.header.info.architecture}"), file=sys.stderr)
    if plan.chosen_fit.verdict is not Verdict.FITS:
        print(warned(f"hearth: warning: {plan.chosen_fit.message}"), file=sys.stderr)
    from app.cli.models import _ProgressLine, run_download

    line = _ProgressLine()
    shown_part = -1

    def progress(part: int, p: DownloadProgress) -> None:
        nonlocal shown_part
        if part != shown_part and plan.chosen.split:
            shown_part = part
            sys.stderr.write(("\n" if line.tty and part else "") + f"part {part + 1} of {len(plan.chosen.files)}\n")
        line(p)

    for download in downloads(library, plan, on_progress=progress, token=load_token()):
        code, _ = run_download(download)
        line.end()
        if code:
            return code
    model = record(library, plan)
    print(warned(f"{model.id}: downloaded and verified: {model.path}"), file=sys.stderr)
    print(warned(f"use it with: hearth --model {model.id}"), file=sys.stderr)
    return 0


# -- --model hf.co/... ---------------------------------------------------------------------
def pull_for_model(args: argparse.Namespace, library: ModelLibrary) -> int | None:
    """For `--model hf.co/...`: None when the model is (now) installed, with args.model set to
    its library id; else the exit code. Asks on a terminal; without one, only with --yes."""
    from app.core.models.hub_pull import find_installed

    ref = parse_ref(args.model)
    assert ref is not None
    installed = find_installed(library, ref)
    if installed is not None:
        args.model = installed.id
        return None
    try:
        plan = _plan(args.model, getattr(args, "ctx", None) or _default_ctx())
    except HearthError as e:
        return _fail(e.message, 1 if e.code in _FAILED_CODES else 2)
    if not plan.header.runnable:
        return _fail(f"{plan.model_id}: {plan.header.support_message()}. Nothing was downloaded.")
    question = f"Download {plan.model_id} ({_gb(plan.chosen.size)})?"
    if not getattr(args, "yes", False):
        if not sys.stdin.isatty():
            return _fail(
                f"{plan.model_id} is not downloaded. {question} Run it in a terminal to be asked, or add --yes."
            )
        print(for_stream(sys.stderr)(plan.chosen_fit.message), file=sys.stderr)
        answer = input(f"{question} [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing downloaded", file=sys.stderr)
            return 2
    code = _pull(library, plan)
    if code:
        return code
    args.model = plan.model_id
    return None


def _default_ctx() -> int:
    from app.core.settings import DEFAULT_CONTEXT

    return DEFAULT_CONTEXT


# -- login ---------------------------------------------------------------------------------
def _login(from_stdin: bool) -> int:
    if from_stdin or not sys.stdin.isatty():
        token = sys.stdin.readline().strip()
    else:
        import getpass

        token = getpass.getpass("Hugging Face token (https://huggingface.co/settings/tokens; not shown): ").strip()
    if not token:
        return _fail("no token was given; nothing was saved.")
    if any(c.isspace() or not c.isprintable() for c in token) or len(token) > 512:
        return _fail("that does not look like a Hugging Face token (hf_...); nothing was saved.")
    from app.core.models.hub_token import save_token

    save_token(token)
    print("hearth: the Hugging Face token is saved in the system keychain.", file=sys.stderr)
    return 0
