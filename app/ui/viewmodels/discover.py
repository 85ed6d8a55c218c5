"""The model manager's Discover tab, its view-model: search the Hugging Face Hub, one repo's
quantizations with their memory fit, a quantization's header read before download, the download
itself into the library, and the Hugging Face token.

Built on the Qt-free core (app.core.models.hub_client, hub_header, hub_fit, hub_pull, hub_token):
this object only orders the calls, runs each in a worker thread (asyncio.to_thread: the UI thread
never waits on the network, the keychain or the disk) and keeps what the view shows. Every Hub call
is bounded by HubClient's timeouts and deadline, so nothing here can hang; an answer that comes
back after the person asked for something else (a newer search, another repo) is dropped, never
shown. A download runs app.core.models.download.Download (progress, cancel, resume, the Hub's LFS
sha256) and then joins the library (hub_pull.record), so the Library tab lists it like any model.

Must not: create widgets, ask the person anything (the dialog asks for the token), keep the token
anywhere but in memory and the keychain, or put it in a message or the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from PySide6.QtCore import QObject, Signal

from app.core.errors import DownloadError, KeychainUnavailable, LibraryError, describe
from app.core.models import Download, DownloadProgress, ModelLibrary
from app.core.models.hub_client import HubClient, HubError, HubRepo, HubRepoFiles, SortKey
from app.core.models.hub_fit import QuantFit, fit_quants, recommend
from app.core.models.hub_header import RemoteHeader, read_remote_header
from app.core.models.hub_names import HubQuant, HubRef
from app.core.models.hub_pull import PullPlan, downloads, model_id_for, record
from app.core.progress_feed import ProgressFeed
from app.ui.hidden import Hidden
from engine.errors import HearthError
from engine.fit import GpuMemory, available_memory, gpu_memory

__all__ = ["DiscoverViewModel", "DownloadState", "Pane", "TokenStore"]

log = logging.getLogger("hearth.ui")

PaneKind = Literal["idle", "busy", "ready", "empty", "offline", "gated", "error"]
_OFFLINE_CODES = ("network", "slow")
_PROGRESS_EVERY_S = 0.1


@dataclass(frozen=True, slots=True)
class Pane:
    """What one part of the tab says: its kind (the view picks a tone) and the words."""

    kind: PaneKind = "idle"
    text: str = ""


@dataclass(frozen=True, slots=True)
class TokenStore:
    """Where the Hugging Face token is kept (app.core.models.hub_token's keychain by default)."""

    load: Callable[[], str | None]
    save: Callable[[str], None]
    delete: Callable[[], bool]

    @staticmethod
    def keychain() -> TokenStore:
        from app.core.models import hub_token

        return TokenStore(hub_token.load_token, hub_token.save_token, hub_token.delete_token)


@dataclass
class DownloadState:
    """A download from this tab (loop thread only)."""

    model_id: str
    repo: str
    quant: str
    parts: int
    part: int = 0
    download: Download | None = None
    progress: DownloadProgress | None = None


@dataclass
class _Repo:
    """The repo selected and what is known about it (loop thread only)."""

    name: str
    listing: HubRepoFiles | None = None
    pane: Pane = field(default_factory=lambda: Pane("busy", "Reading the repo's files…"))
    fits: list[QuantFit] = field(default_factory=list)
    recommended: str | None = None
    chosen: str | None = None
    header: RemoteHeader | None = None
    header_pane: Pane = field(default_factory=Pane)
    installed: frozenset[str] = frozenset()  # library ids of this repo's models on disk


class DiscoverViewModel(QObject):
    results_changed = Signal()  # read results / search_pane / answered_at
    repo_changed = Signal()  # the repo, its quantizations or their fits: read repo_* / quants
    header_changed = Signal()  # the chosen quantization's header: read header / header_pane
    download_changed = Signal()  # read download_state
    token_changed = Signal()  # read has_token
    message = Signal(str, str)  # (kind "ok" | "info" | "error", text) for the person
    installed = Signal(str)  # the library id of a model this tab just downloaded

    def __init__(
        self,
        library: ModelLibrary,
        *,
        refresh: Callable[[], Awaitable[None]],
        n_ctx: Callable[[], int],
        gpu_offload: Callable[[], bool] = lambda: False,
        endpoint: str | None = None,
        tokens: TokenStore | None = None,
        read_timeout_s: float = 10.0,
        deadline_s: float = 20.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._library = library
        self._refresh = refresh
        self._n_ctx = n_ctx
        self._gpu_offload = gpu_offload
        self._endpoint = endpoint  # None: HF_ENDPOINT, else huggingface.co (read per call)
        self._tokens = tokens or TokenStore.keychain()
        self.read_timeout_s = read_timeout_s
        self.deadline_s = deadline_s
        self._token: str | None = None  # held in memory only; never shown, never logged
        self._token_known = False
        self.query = ""
        self.sort: SortKey = "downloads"
        self.results: list[HubRepo] = []
        self.search_pane = Pane("idle", "Search the Hugging Face Hub for GGUF models by name, e.g. “qwen 7b instruct”.")
        self.answered_at: float | None = None  # perf_counter when the last search's answer arrived
        self._search_gen = 0
        self._repo: _Repo | None = None
        self._header_gen = 0
        self.download_state: DownloadState | None = None
        # Free RAM and the GPU, read in a worker thread when a repo opens (nvidia-smi can take a
        # second); tests put a fixed machine here.
        self.machine: Callable[[], tuple[int, GpuMemory | None]] = lambda: (available_memory(), gpu_memory())
        self._work: set[asyncio.Future[object]] = set()

    # -- reading ---------------------------------------------------------------------------
    @property
    def has_token(self) -> bool:
        return self._token is not None

    @property
    def repo(self) -> str | None:
        return self._repo.name if self._repo is not None else None

    @property
    def repo_info(self) -> HubRepo | None:
        r = self._repo
        if r is None:
            return None
        if r.listing is not None:
            return r.listing.repo
        return next((x for x in self.results if x.repo == r.name), None)

    @property
    def repo_pane(self) -> Pane:
        return self._repo.pane if self._repo is not None else Pane()

    @property
    def quants(self) -> list[QuantFit]:
        return list(self._repo.fits) if self._repo is not None else []

    @property
    def recommended(self) -> str | None:
        return self._repo.recommended if self._repo is not None else None

    @property
    def chosen(self) -> str | None:
        return self._repo.chosen if self._repo is not None else None

    @property
    def header(self) -> RemoteHeader | None:
        return self._repo.header if self._repo is not None else None

    @property
    def header_pane(self) -> Pane:
        return self._repo.header_pane if self._repo is not None else Pane()

    def chosen_fit(self) -> QuantFit | None:
        r = self._repo
        return next((f for f in r.fits if f.quant.quant == r.chosen), None) if r is not None else None

    def installed_id(self) -> str | None:
        """The library id of the chosen quantization when it is already on disk."""
        r = self._repo
        if r is None or r.chosen is None:
            return None
        wanted = model_id_for(r.name, r.chosen)
        return wanted if wanted.lower() in r.installed else None

    def download_blocker(self) -> str | None:
        """Why Download is off for the chosen quantization, or None when it may start."""
        r = self._repo
        if r is None or r.chosen is None:
            return "Choose a quantization first."
        if self.download_state is not None:
            return f"{self.download_state.model_id} is downloading; one download at a time here."
        fit = self.chosen_fit()
        if fit is not None and any(f.sha256 is None for f in fit.quant.files):
            return "The Hub gives no sha256 for this file, so Hearth could not verify it: not offered."
        if r.header is None:
            if r.header_pane.kind == "busy":
                return "Reading the file's header first (a few hundred KB, not the model)…"
            return r.header_pane.text or "The file's header has not been read."
        if not r.header.runnable:
            arch = r.header.info.architecture
            return f"Download is off: this version of Hearth cannot run {arch} models, so the file would be of no use."
        return None

    # -- the token -------------------------------------------------------------------------
    async def start(self) -> None:
        """Read whether a token is saved (the keychain can be slow: off the UI thread)."""
        if self._token_known:
            return
        token = (await asyncio.to_thread(lambda: Hidden(self._tokens.load()))).value  # see app.ui.hidden
        if not self._token_known:
            self._token, self._token_known = token, True
            self.token_changed.emit()

    async def login(self, token: str) -> bool:
        """Keep `token` in the keychain and use it from now on; then retry a gated repo."""
        token = token.strip()
        if not token or len(token) > 512 or any(c.isspace() or not c.isprintable() for c in token):
            self._say("error", "That does not look like a Hugging Face token (hf_…); nothing was saved.")
            return False
        try:
            # In a closure: qasync's executor logs a call's arguments at DEBUG level.
            await asyncio.to_thread(lambda: self._tokens.save(token))
        except KeychainUnavailable as e:
            self._say("error", e.message)
            return False
        self._token, self._token_known = token, True
        self.token_changed.emit()
        self._say("ok", "The Hugging Face token is saved in the system keychain.")
        r = self._repo
        if r is not None and r.pane.kind in ("gated", "error"):
            await self.open_repo(r.name)
        return True

    async def logout(self) -> None:
        had = await asyncio.to_thread(self._tokens.delete)
        self._token, self._token_known = None, True
        self.token_changed.emit()
        self._say("ok", "The Hugging Face token was removed." if had else "No Hugging Face token was saved.")

    # -- searching -------------------------------------------------------------------------
    async def search(self, query: str, sort: SortKey | None = None) -> None:
        """Search the Hub; a newer search makes this one's answer be dropped. Never raises."""
        self.query, self.sort = query.strip(), sort or self.sort
        self._search_gen += 1
        gen = self._search_gen
        if not self.query:
            self.results, self.answered_at = [], None
            self.search_pane = Pane("idle", "Type the words of a model's name to search the Hub.")
            self.results_changed.emit()
            return
        self.search_pane = Pane("busy", f"Searching the Hub for “{self.query}”…")
        self.results_changed.emit()
        await self.start()
        client = self._client()
        try:
            found, arrived = await asyncio.to_thread(_timed_search, client, self.query, self.sort)
        except HubError as e:
            if gen == self._search_gen:
                self.results, self.answered_at = [], None
                self.search_pane = self._pane_for(e, None)
                self.results_changed.emit()
            return
        if gen != self._search_gen:
            return  # the person typed on: this answer is for words no longer in the box
        self.results, self.answered_at = found, arrived
        self.search_pane = (
            Pane("ready", f"{len(found)} GGUF repo{'s' if len(found) != 1 else ''} for “{self.query}”.")
            if found
            else Pane("empty", f"No GGUF repos on the Hub match “{self.query}”. Try fewer or other words.")
        )
        self.results_changed.emit()

    # -- one repo --------------------------------------------------------------------------
    async def open_repo(self, name: str) -> None:
        """List `name`'s quantizations with their fit; then read the recommended one's header."""
        r = _Repo(name)
        self._repo = r
        self._header_gen += 1
        self.repo_changed.emit()
        self.header_changed.emit()
        await self.start()
        client = self._client()
        try:
            listing, memory, installed = await asyncio.gather(
                asyncio.to_thread(client.repo_files, name),
                self._machine(),
                asyncio.to_thread(self._installed_ids, name),
            )
        except HubError as e:
            if self._repo is r:
                r.pane = self._pane_for(e, name)
                self.repo_changed.emit()
            return
        if self._repo is not r:
            return
        r.listing, r.installed = listing, installed
        if not listing.quants:
            r.pane = Pane("empty", f"{name} has no GGUF model files Hearth can run.")
            self.repo_changed.emit()
            return
        r.fits = fit_quants(listing.quants, n_ctx=self._n_ctx(), available_bytes=memory[0])
        best = recommend(r.fits)
        r.recommended = best.quant.quant if best is not None else None
        r.pane = Pane("ready", _quant_count(listing))
        self.repo_changed.emit()
        first = r.recommended or listing.quants[0].quant
        await self.choose(first)

    async def choose(self, quant: str) -> None:
        """Choose one quantization and read its header over Range (about 2 MB at most)."""
        r = self._repo
        if r is None or r.listing is None:
            return
        q = next((x for x in r.listing.quants if x.quant == quant), None)
        if q is None:
            return
        self._header_gen += 1
        gen = self._header_gen
        r.chosen, r.header = quant, None
        r.header_pane = Pane("busy", f"Reading {q.first.name}'s header (not the model)…")
        self.header_changed.emit()
        self.repo_changed.emit()
        client = self._client()
        revision = r.listing.commit or "main"
        try:
            header = await asyncio.to_thread(read_remote_header, client, r.name, q.first.name, revision=revision)
        except HearthError as e:  # HubError from the Hub, ModelLoadError for a bad header
            if gen == self._header_gen and self._repo is r:
                r.header_pane = self._pane_for(e, r.name) if isinstance(e, HubError) else Pane("error", e.message)
                self.header_changed.emit()
            return
        if gen != self._header_gen or self._repo is not r:
            return
        r.header = header
        r.header_pane = Pane("ready", header.support_message())
        self.header_changed.emit()  # shown at once; the fits follow
        free, gpu = await self._machine()
        if self._repo is r:  # every quantization's fit from this one header (hub_fit's "scaled")
            r.fits = fit_quants(
                r.listing.quants,
                n_ctx=self._n_ctx(),
                available_bytes=free,
                header=header.info,
                header_quant=None if q.split else q.quant,  # a first part's header holds only its tensors
                gpu=gpu,
                gpu_offload_supported=self._gpu_offload(),
            )
            best = recommend(r.fits) if header.runnable else None  # one architecture for the whole repo
            r.recommended = best.quant.quant if best is not None else None
        self.header_changed.emit()  # the Download button's state follows the fit
        self.repo_changed.emit()

    # -- downloading -----------------------------------------------------------------------
    async def download(self) -> str | None:
        """Download the chosen quantization into the library; its id, or None (with a message)."""
        r = self._repo
        blocker = self.download_blocker()
        if r is None or r.listing is None or r.header is None or blocker is not None:
            if blocker:
                self._say("error", blocker)
            return None
        fit = self.chosen_fit()
        assert fit is not None and r.chosen is not None
        plan = PullPlan(
            HubRef(r.name, r.chosen),
            r.listing,
            fit.quant,
            r.header,
            tuple(r.fits),
            next((f for f in r.fits if f.quant.quant == r.recommended), None),
            self._client().endpoint,
        )
        job = DownloadState(plan.model_id, r.name, r.chosen, len(plan.chosen.files))
        self.download_state = job
        self._track()
        self.download_changed.emit()
        loop = asyncio.get_running_loop()
        feed: ProgressFeed[tuple[int, DownloadProgress]] = ProgressFeed(loop, self._on_progress, _PROGRESS_EVERY_S)
        try:
            token = self._token  # handed over in a closure: qasync logs a call's arguments at DEBUG
            parts = await asyncio.to_thread(
                lambda: downloads(self._library, plan, on_progress=lambda i, p: feed.put((i, p)), token=token)
            )
            for i, part in enumerate(parts):
                job.part, job.download = i, part
                self.download_changed.emit()
                await asyncio.to_thread(part.run)
            model = await asyncio.to_thread(record, self._library, plan)
        except asyncio.CancelledError:
            if job.download is not None:
                job.download.cancel()  # the thread would otherwise go on downloading
            raise
        except (DownloadError, LibraryError) as e:
            self._say("info" if e.code == "cancelled" else "error", e.message)
            return None
        except OSError as e:
            self._say("error", f"Could not save {plan.model_id} under {self._library.models_dir}: {e.strerror or e}")
            return None
        except Exception as e:  # a bug: say it in words, log the details
            log.exception("downloading %s failed", plan.model_id)
            self._say("error", f"Could not download {plan.model_id}: {describe(e)}")
            return None
        finally:
            feed.close()
            self.download_state = None
            self.download_changed.emit()
        if self._repo is r:
            r.installed = r.installed | {model.id.lower()}
        await self._refresh()
        self._say("ok", f"{model.id}: downloaded and verified. It is in Library: choose “Use this model” there.")
        self.repo_changed.emit()
        self.installed.emit(model.id)
        return model.id

    def cancel_download(self) -> None:
        """Stop the download; its partial file stays and the next Download resumes it."""
        job = self.download_state
        if job is not None and job.download is not None:
            job.download.cancel()

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop a download (its partial file stays, to resume) and wait for it to end."""
        self.cancel_download()
        deadline = time.monotonic() + timeout_s
        while any(not f.done() for f in self._work) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    # -- helpers ---------------------------------------------------------------------------
    def _client(self) -> HubClient:
        return HubClient(
            endpoint=self._endpoint, token=self._token, deadline_s=self.deadline_s, read_timeout_s=self.read_timeout_s
        )

    async def _machine(self) -> tuple[int, GpuMemory | None]:
        return await asyncio.to_thread(self.machine)

    def _installed_ids(self, repo: str) -> frozenset[str]:
        prefix = f"hf.co/{repo.lower()}:"
        return frozenset(
            m.id.lower() for m in self._library.models() if m.installed and m.id.lower().startswith(prefix)
        )

    def _pane_for(self, e: HubError, repo: str | None) -> Pane:
        """A Hub failure in words for this window (the core's words name CLI commands)."""
        if e.code in _OFFLINE_CODES:
            return Pane(
                "offline",
                f"{e.message} Discover needs the network; the Library tab lists the catalog and the models "
                "already on this computer, which work without it.",
            )
        if e.code == "gated" and repo is not None:
            if self._token is None:
                return Pane(
                    "gated",
                    f"{repo} is gated: accept its terms at https://huggingface.co/{repo} (signed in, in a browser), "
                    "then give Hearth a token of that account with “Hugging Face token…”.",
                )
            return Pane(
                "gated",
                f"{repo} is gated and the saved token has no access yet: accept its terms at "
                f"https://huggingface.co/{repo} with the account the token belongs to, then choose the repo again.",
            )
        if e.code in ("unauthorized", "not_found") and repo is not None:
            if self._token is None:
                return Pane(
                    "gated",
                    f"{repo} was not found, or it is private: to see a private repo, give Hearth a token "
                    "that can read it with “Hugging Face token…”.",
                )
            if e.code == "unauthorized":
                return Pane(
                    "gated", f"The saved Hugging Face token was refused for {repo}: log in again with a new one."
                )
        return Pane("error", e.message.replace("`hearth models login`", "“Hugging Face token…”"))

    def _on_progress(self, value: tuple[int, DownloadProgress]) -> None:
        job = self.download_state
        if job is not None:
            job.part, job.progress = value
            self.download_changed.emit()

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._work.add(task)
            task.add_done_callback(self._work.discard)

    def _say(self, kind: str, text: str) -> None:
        self.message.emit(kind, text)


def _timed_search(client: HubClient, query: str, sort: SortKey) -> tuple[list[HubRepo], float]:
    """The search, and the moment its answer was in (the figure: answer to list painted)."""
    found = client.search(query, sort=sort, limit=50)
    return found, time.perf_counter()


def _quant_count(listing: HubRepoFiles) -> str:
    n = len(listing.quants)
    return f"{n} quantization{'s' if n != 1 else ''}" + (
        f" (and {listing.other_files} other file{'s' if listing.other_files != 1 else ''})"
        if listing.other_files
        else ""
    )


def quant_files(q: HubQuant) -> str:
    """“one file” or “3 parts”, for the quantization list."""
    return "1 file" if not q.split else f"{len(q.files)} parts"
