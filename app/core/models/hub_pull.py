"""Pull a model from the Hub by name (`hf.co/OWNER/REPO[:QUANT|:FILE]`) into the library.

The steps, each usable alone (the CLI runs them in order, the window can show each):

1. `discover(client, ref, ...)` lists the repo's GGUF files, picks the quantization (the one
   named; else the recommended one, app.core.models.hub_fit), reads that file's header over
   Range requests (app.core.models.hub_header) and estimates the fit of every quantization
   from it. Nothing is downloaded but the header. A model this llama.cpp cannot run, a file
   not in LFS (no sha256 to verify against) or a name that matches nothing is refused here.
2. `downloads(library, plan, ...)` gives one app.core.models.download.Download per file (a split
   model's parts, in order), each verified against the Hub's LFS sha256 and resumable, saved
   as `<models>/hf/OWNER/REPO/<file>`, pinned to the commit the listing was made at.
3. `record(library, plan)` adds the model to library.json once every part is in place; it then
   lists, resolves (`--model hf.co/OWNER/REPO:QUANT`), verifies and removes like any model.

Must not: touch Qt, keep a token, or start a download before step 1 has said yes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.core.models.download import Download, DownloadProgress
from app.core.models.hub_client import HubClient, HubError, HubRepoFiles
from app.core.models.hub_fit import QuantFit, fit_quants, recommend
from app.core.models.hub_header import RemoteHeader, read_remote_header
from app.core.models.hub_names import HubQuant, HubRef, parse_ref
from app.core.models.library import LibraryModel, ModelLibrary
from engine.fit import GpuMemory

__all__ = ["PullPlan", "discover", "downloads", "find_installed", "model_id_for", "record"]


@dataclass(frozen=True, slots=True)
class PullPlan:
    """What a pull would fetch, and what is known about it before any weights move."""

    ref: HubRef
    listing: HubRepoFiles
    chosen: HubQuant
    header: RemoteHeader
    fits: tuple[QuantFit, ...]
    recommended: QuantFit | None
    endpoint: str  # the Hub it was found on (downloads go there too)

    @property
    def model_id(self) -> str:
        return model_id_for(self.ref.repo, self.chosen.quant)

    @property
    def chosen_fit(self) -> QuantFit:
        return next(f for f in self.fits if f.quant == self.chosen)

    @property
    def revision(self) -> str:
        return self.listing.commit or "main"


def model_id_for(repo: str, quant: str) -> str:
    """The library id of a pulled model: what `--model` takes and `hearth models list` shows."""
    return f"hf.co/{repo}:{quant}"


def find_installed(library: ModelLibrary, ref: HubRef) -> LibraryModel | None:
    """The installed model `ref` names (hf.co/OWNER/REPO alone: the only quantization installed)."""
    models = [m for m in library.models() if m.source == "hub" and m.installed]
    if ref.selector is not None:
        wanted = model_id_for(ref.repo, ref.selector).lower()
        for m in models:
            if m.id.lower() == wanted or (ref.is_file and m.path is not None and m.path.name == ref.selector):
                return m
        return None
    mine = [m for m in models if m.id.lower().startswith(f"hf.co/{ref.repo.lower()}:")]
    return mine[0] if len(mine) == 1 else None


def discover(
    client: HubClient,
    ref: HubRef | str,
    *,
    n_ctx: int,
    available_bytes: int,
    gpu: GpuMemory | None = None,
    gpu_offload_supported: bool = False,
) -> PullPlan:
    """Step 1 (see the module); HubError or ModelLoadError when it cannot or should not go on."""
    if isinstance(ref, str):
        parsed = parse_ref(ref)
        if parsed is None:
            raise HubError("not_found", f"{ref!r} is not a Hub model name; write hf.co/OWNER/REPO[:QUANT].")
        ref = parsed
    listing = client.repo_files(ref.repo)
    if not listing.quants:
        raise HubError("not_found", f"{ref.repo} has no GGUF model files, so Hearth cannot run anything from it.")
    rough = fit_quants(listing.quants, n_ctx=n_ctx, available_bytes=available_bytes)
    chosen = _choose(ref, listing, rough)
    if any(f.sha256 is None for f in chosen.files):
        raise HubError("bad_answer", f"{ref.repo}'s {chosen.first.name} has no LFS sha256, so Hearth cannot verify it.")
    header = read_remote_header(client, ref.repo, chosen.first.name, revision=listing.commit or "main")
    fits = fit_quants(
        listing.quants,
        n_ctx=n_ctx,
        available_bytes=available_bytes,
        header=header.info,
        header_quant=None if chosen.split else chosen.quant,  # a first part's header holds only its tensors
        gpu=gpu,
        gpu_offload_supported=gpu_offload_supported,
    )
    return PullPlan(ref, listing, chosen, header, tuple(fits), recommend(fits), client.endpoint)


def downloads(
    library: ModelLibrary,
    plan: PullPlan,
    *,
    on_progress: Callable[[int, DownloadProgress], None] | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> list[Download]:
    """Step 2: a Download per file, in order; `on_progress(part_index, progress)`."""
    folder = library.models_dir / "hf" / plan.ref.repo
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    count = len(plan.chosen.files)
    for i, f in enumerate(plan.chosen.files):
        label = plan.model_id if count == 1 else f"{plan.model_id} (part {i + 1} of {count})"
        report = (lambda p, i=i: on_progress(i, p)) if on_progress is not None else None
        out.append(
            Download(
                repo=plan.ref.repo,
                filename=f.name,
                dest=folder / f.name.rsplit("/", 1)[-1],
                revision=plan.revision,
                expected_sha256=f.sha256,
                expected_size=f.size,
                on_progress=report,
                endpoint=endpoint or plan.endpoint,
                label=label,
                token=token,
            )
        )
    return out


def record(library: ModelLibrary, plan: PullPlan) -> LibraryModel:
    """Step 3: the model joins the library (call once every Download has run)."""
    folder = f"hf/{plan.ref.repo}"
    files: list[dict[str, Any]] = [
        {"name": f"{folder}/{f.name.rsplit('/', 1)[-1]}", "sha256": f.sha256, "size": f.size} for f in plan.chosen.files
    ]
    return library.record_hub(
        {
            "id": plan.model_id,
            "name": f"{plan.ref.repo.rsplit('/', 1)[-1]} ({plan.chosen.quant})",
            "repo": plan.ref.repo,
            "quant": plan.chosen.quant,
            "commit": plan.listing.commit,
            "architecture": plan.header.info.architecture,
            "files": files,
            "at": time.time(),
        }
    )


def _choose(ref: HubRef, listing: HubRepoFiles, rough: list[QuantFit]) -> HubQuant:
    quants = listing.quants
    if ref.selector is None:
        best = recommend(rough)
        if best is None:
            smallest = quants[0]
            raise HubError(
                "too_big",
                f"No quantization of {ref.repo} fits in this computer's free memory (the smallest, "
                f"{smallest.quant}, is {smallest.size / 1e9:.1f} GB). Free some memory or choose a smaller model.",
            )
        return best.quant
    wanted = ref.selector.lower()
    for q in quants:
        if q.quant.lower() == wanted or any(
            f.name.lower() == wanted or f.name.rsplit("/", 1)[-1].lower() == wanted for f in q.files
        ):
            return q
    names = ", ".join(q.quant for q in quants)
    raise HubError("not_found", f"{ref.repo} has no {ref.selector}. It has: {names}.")
