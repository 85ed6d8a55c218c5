"""What the model manager shows, as plain values and words: list rows, the details of one
model, which actions are possible and why not, download progress in words.

Owns wording, the memory-fit badge and the rules for which buttons apply. Pure functions of
a `LibraryModel` and a `ModelStatus` (what the view-model knows about it now): no Qt, no
disk, no network, no clock, so every sentence and rule here can be tested directly.
Must not: decide what happens when an action runs (app.ui.viewmodels.models does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.model_state import ModelState
from app.core.models import DownloadProgress, LibraryModel, ModelKind, Phase
from engine.fit import TIGHT_SHARE, Fit, Verdict
from engine.gguf_info import GGUFInfo, format_bytes, format_params

__all__ = [
    "Action",
    "ModelDetails",
    "ModelRow",
    "ModelStatus",
    "catalog_verdict",
    "details_for",
    "gb",
    "progress_text",
    "remove_question",
    "row_for",
    "trained_context",
]


@dataclass(frozen=True, slots=True)
class Action:
    """A button's state: enabled, or disabled with the reason as its tooltip."""

    enabled: bool
    why: str = ""
    shown: bool = True  # False: the action does not apply to this model (Download on a bundled one)


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """What the view-model knows about one model right now, beyond the library's record."""

    info: GGUFInfo | None = None  # read from the header, once installed
    header_error: str | None = None  # the header could not be read: why
    fit: Fit | None = None
    loaded: bool = False  # the engine is running this file
    downloading: bool = False
    progress: DownloadProgress | None = None  # the download's latest progress shown
    cancellable: bool = False  # the download has started and can be stopped
    checked: tuple[int, int] | None = None  # (bytes hashed, total) while verifying
    busy: bool = False  # being removed
    free_bytes: int = 0
    gpu_backend: bool | None = None  # None: unknown until the engine loads a model
    service_state: ModelState = ModelState.NONE  # ChatService.model_state
    loading: str | None = None  # the id the manager is loading, if any


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One line of the model list."""

    id: str
    name: str
    facts: str  # "98.4 MB · 135M · Q4_1 · Apache-2.0"
    state: str  # "bundled", "downloaded", "paused at 40% — Download resumes", "downloading 12%", ...
    state_kind: str  # bundled | downloaded | not_downloaded | paused | added | missing | downloading | verifying
    loaded: bool
    verdict: str | None  # a Verdict value, "damaged", or None while unknown
    badge: str  # "Fits", "Tight", "Too big", "Damaged", ""
    badge_tip: str
    progress: int = -1  # 0..100 while downloading, else -1
    kind: ModelKind = "chat"  # an embedding model is listed, downloaded and removed, never used to chat


@dataclass(frozen=True, slots=True)
class ModelDetails:
    """The details pane for one model."""

    row: ModelRow
    notes: str
    licence: str
    metadata: list[tuple[str, str]]  # from the GGUF header; empty until read
    metadata_note: str  # why there is no metadata ("Reading the file's header…", an error)
    fit_text: str
    verdict: str | None
    where: str  # how many layers go to the GPU, or that it runs on the CPU
    trained_context: int | None
    block_count: int | None
    download: Action
    cancel: Action
    verify: Action
    remove: Action
    use: Action
    progress: int = -1  # 0..100 for the running download or verification, else -1
    progress_text: str = ""
    gpu: Action = field(default_factory=lambda: Action(False))


def gb(n: float) -> str:
    """Sizes in the CLI's words: "412 MB", "1.1 GB" (small ones in kB)."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.0f} MB"
    return f"{max(0, n) / 1e3:.0f} kB"


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def progress_text(p: DownloadProgress) -> str:
    """ "412 MB of 1.1 GB · 8.3 MB/s · 1 min 24 s left", or what the download is doing."""
    if p.phase is Phase.CONNECTING:
        return "Connecting…"
    if p.phase is Phase.VERIFYING:
        return "Verifying…"
    if p.phase is Phase.DONE:
        return "Downloaded and verified."
    parts = [f"{gb(p.done_bytes)} of {gb(p.total_bytes)}"]
    if p.bytes_per_s > 0:
        parts.append(f"{p.bytes_per_s / 1e6:.1f} MB/s")
    eta = p.eta_s
    if eta is not None:
        parts.append(f"{_duration(eta)} left")
    text = " · ".join(parts)
    return f"{text} ({p.note})" if p.note else text


def percent(done: int, total: int) -> int:
    return min(100, done * 100 // total) if total > 0 else 0


def state_of(m: LibraryModel, progress: DownloadProgress | None, downloading: bool) -> tuple[str, str]:
    """(words, kind) for a model's state in the list."""
    if downloading:
        if progress is None or progress.phase is Phase.CONNECTING:
            return "connecting…", "downloading"
        if progress.phase in (Phase.VERIFYING, Phase.DONE):
            return "verifying…", "verifying"
        return f"downloading {percent(progress.done_bytes, progress.total_bytes)}%", "downloading"
    if m.source == "bundled":
        return ("bundled", "bundled") if m.installed else ("bundled, missing (run the set-up again)", "missing")
    if m.source == "added":
        return ("added", "added") if m.installed else ("added, file missing", "missing")
    if m.installed:
        return "downloaded", "downloaded"
    if m.partial_bytes:
        return f"paused at {percent(m.partial_bytes, m.size_bytes)}% — Download resumes", "paused"
    return "not downloaded", "not_downloaded"


def facts_line(m: LibraryModel, info: GGUFInfo | None) -> str:
    """Size · parameters · quantisation · licence, from the catalog or else the file's header."""
    e = m.entry
    size = m.size_bytes or (info.size_bytes if info is not None else 0)
    params = e.parameters if e is not None else (info.parameters if info is not None else 0)
    quant = e.quantisation if e is not None else (info.quantisation if info is not None else "")
    parts = [
        "embedding model" if m.kind == "embedding" else "",
        format_bytes(size) if size else "",
        format_params(params) if params else "",
        quant,
        e.license if e is not None else "",
    ]
    return " · ".join(p for p in parts if p)


_BADGE = {Verdict.FITS: "Fits", Verdict.TIGHT: "Tight", Verdict.TOO_BIG: "Too big"}


def catalog_verdict(recommended_gb: float, free_bytes: int) -> Verdict:
    """A model not downloaded yet, judged by the catalog's recommendation (the header is not here)."""
    need = recommended_gb * 1e9
    if need <= TIGHT_SHARE * free_bytes:
        return Verdict.FITS
    return Verdict.TIGHT if need <= free_bytes else Verdict.TOO_BIG


def fit_badge(
    m: LibraryModel, fit: Fit | None, header_error: str | None, free_bytes: int
) -> tuple[str | None, str, str]:
    """(verdict, badge words, tooltip) for the list."""
    if header_error:
        return "damaged", "Damaged", header_error
    if fit is not None:
        return fit.verdict.value, _BADGE[fit.verdict], fit.message
    if m.entry is not None and not m.installed:
        v = catalog_verdict(m.entry.recommended_memory_gb, free_bytes)
        return (
            v.value,
            _BADGE[v],
            (
                f"Needs about {m.entry.recommended_memory_gb:.1f} GB at 4,096 tokens of "
                f"context; {gb(free_bytes)} is free now."
            ),
        )
    return None, "", ""


def fit_sentence(m: LibraryModel, fit: Fit | None, free_bytes: int) -> tuple[str, str | None]:
    """The details pane's memory sentence and its verdict."""
    if fit is not None:
        return fit.message, fit.verdict.value
    if m.entry is not None and not m.installed:
        v = catalog_verdict(m.entry.recommended_memory_gb, free_bytes)
        lead = {Verdict.FITS: "Should fit", Verdict.TIGHT: "Tight", Verdict.TOO_BIG: "Probably too big"}[v]
        return (
            f"{lead}: the catalog recommends {m.entry.recommended_memory_gb:.1f} GB of memory at 4,096 tokens "
            f"of context; {gb(free_bytes)} is free now. The exact estimate comes from the file once it is "
            "downloaded."
        ), v.value
    return "", None


def where_it_runs(fit: Fit | None, info: GGUFInfo | None, gpu_backend: bool | None) -> str:
    """`gpu_backend` None: not known yet (the engine learns it when it loads a model)."""
    if gpu_backend is None:
        return (
            "Runs on the CPU unless this build of llama.cpp has a GPU backend; Hearth learns that when a model loads."
        )
    if not gpu_backend:
        return "Runs on the CPU: this build of llama.cpp has no GPU backend."
    if fit is None or info is None:
        return "A GPU backend is available: layers go to the GPU as its memory allows."
    if fit.gpu_layers:
        return f"{fit.gpu_layers} of {info.block_count + 1} layers go to the GPU; the rest run on the CPU."
    return "No layer goes to the GPU: it runs on the CPU."


def remove_question(m: LibraryModel) -> str:
    """The confirmation, in `hearth models rm`'s words."""
    if m.source == "added":
        return f"Remove {m.name} from Hearth's list? The file stays at {m.path}."
    on_disk = (m.size_bytes if m.installed else 0) + m.partial_bytes
    return f"Delete {m.name} ({m.path}) and free {gb(on_disk)}?"


def trained_context(m: LibraryModel, info: GGUFInfo | None) -> int | None:
    """The context the model was trained for: the header's, else the catalog's."""
    if info is not None and info.context_length:
        return info.context_length
    return m.entry.context_length if m.entry is not None else None


def row_for(m: LibraryModel, st: ModelStatus) -> ModelRow:
    p = st.progress
    state, kind = state_of(m, p, st.downloading)
    verdict, badge, tip = fit_badge(m, st.fit, st.header_error, st.free_bytes)
    progress = -1
    if st.downloading:
        progress = percent(p.done_bytes, p.total_bytes) if p is not None and p.phase is not Phase.CONNECTING else 0
    return ModelRow(m.id, m.name, facts_line(m, st.info), state, kind, st.loaded, verdict, badge, tip, progress, m.kind)


def details_for(m: LibraryModel, st: ModelStatus) -> ModelDetails:
    info, e = st.info, m.entry
    text, verdict = fit_sentence(m, st.fit, st.free_bytes)
    if m.source == "added":
        notes = f"Added from {m.path}. The file stays where it is."
    elif e is not None and e.kind == "embedding":
        notes = "\n".join(n for n in (e.notes, _EMBEDDING_USE.format(dimensions=e.dimensions, id=e.id)) if n)
    elif e is not None:
        notes = "\n".join(n for n in (e.notes, e.chat_template_note and f"Chat format: {e.chat_template_note}") if n)
    else:
        notes = ""
    progress, progress_words = -1, ""
    if st.downloading:
        p = st.progress
        progress = percent(p.done_bytes, p.total_bytes) if p is not None else 0
        progress_words = progress_text(p) if p is not None else "Connecting…"
    elif st.checked is not None:
        done, total = st.checked
        progress = percent(done, total)
        progress_words = f"Checking the sha256: {gb(done)} of {gb(total)}"
    return ModelDetails(
        row=row_for(m, st),
        notes=notes,
        licence=e.license if e is not None else "Not in Hearth's catalog: see where the file came from.",
        metadata=info.describe() if info is not None else [],
        metadata_note=_header_note(m, st),
        fit_text=text,
        verdict=verdict,
        where=where_it_runs(st.fit, info, st.gpu_backend) if text else "",
        trained_context=trained_context(m, info),
        block_count=info.block_count if info is not None else None,
        download=_download_action(m, st),
        cancel=Action(st.cancellable, shown=st.downloading),
        verify=_verify_action(m, st),
        remove=_remove_action(m, st),
        use=_use_action(m, st),
        progress=progress,
        progress_text=progress_words,
        gpu=_gpu_action(st),
    )


def _header_note(m: LibraryModel, st: ModelStatus) -> str:
    if st.header_error:
        return st.header_error
    if m.installed:
        return "" if st.info is not None else "Reading the file's header…"
    if m.source == "added":
        return f"The file is missing: {m.path}"
    return "Download it to read its details from the file."


def _download_action(m: LibraryModel, st: ModelStatus) -> Action:
    if m.source != "catalog" or m.installed:
        return Action(False, shown=False)
    return Action(False, "It is downloading.") if st.downloading else Action(True)


def _verify_action(m: LibraryModel, st: ModelStatus) -> Action:
    if not m.installed:
        return Action(False, shown=False)
    return Action(False, "Checking it now.") if st.checked is not None else Action(True)


def _remove_action(m: LibraryModel, st: ModelStatus) -> Action:
    if m.source == "bundled":
        return Action(False, f"{m.name} comes with Hearth and cannot be removed.")
    if m.source == "catalog" and not m.installed and not m.partial_bytes and not st.downloading:
        return Action(False, shown=False)  # nothing on disk
    if st.downloading:
        return Action(False, "Cancel the download first.")
    if st.loaded or st.loading == m.id:
        return Action(False, f"{m.name} is in use: load another model first, then remove this one.")
    if st.busy or st.checked is not None:
        return Action(False, "Wait until the current action on it ends.")
    return Action(True)


_EMBEDDING_USE = (
    "An embedding model: it turns your documents' passages and questions into {dimensions}-dimensional "
    "vectors for search. Choose it for your documents with `hearth docs model {id}`; it cannot chat."
)


def _use_action(m: LibraryModel, st: ModelStatus) -> Action:
    if m.kind == "embedding":
        return Action(False, f"{m.name} is an embedding model, for your documents: choose a chat model to chat with.")
    if not m.installed:
        return Action(False, "Download it first." if m.source == "catalog" else f"The file is missing: {m.path}")
    if st.header_error:
        return Action(False, st.header_error)
    if st.service_state is ModelState.GENERATING:
        return Action(False, "Stop the answer first")
    if st.loading is not None or st.service_state is ModelState.LOADING:
        return Action(False, "Wait until the model that is loading is ready.")
    if st.downloading or st.busy:
        return Action(False, "Wait until the current action on it ends.")
    return Action(True)


def _gpu_action(st: ModelStatus) -> Action:
    if st.gpu_backend:
        return Action(True)
    if st.gpu_backend is None:
        return Action(False, "Load a model first: Hearth learns whether llama.cpp can use a GPU when it loads one.")
    return Action(False, "This build of llama.cpp has no GPU backend: models run on the CPU.")
