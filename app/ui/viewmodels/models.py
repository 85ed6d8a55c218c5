"""The model manager's view-model: the library's models with their state, memory fit and
header metadata; downloads, verification, adding, removing, load settings, switching models.

Owns what the manager shows (as app.core.models.rows values) and every slow operation behind it,
each run off the UI thread: library scans and GGUF header reads, downloads and hashing in
worker threads, loads in the engine process. Worker threads never touch this object: they
hand their latest progress to the loop (app.progress_feed), which delivers it at most ten
times a second. What rows and details say is app.core.models.rows' job. Expected failures become
a `message` for a person; nothing here raises at the view.
Must not: create widgets, ask the person anything (the dialog asks before `remove`), or
edit the catalog.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.errors import DownloadError, LibraryError, describe
from app.core.models import Download, DownloadProgress, LibraryModel, ModelLibrary
from app.core.models.rows import (
    ModelDetails,
    ModelRow,
    ModelStatus,
    details_for,
    gb,
    remove_question,
    row_for,
    trained_context,
)
from app.core.ports import ChatBackend
from app.core.progress_feed import ProgressFeed
from app.core.settings import LoadSettings, SettingsFile
from app.ui.viewmodels.discover import DiscoverViewModel
from engine.errors import EngineError, ModelLoadError
from engine.fit import Fit, GpuMemory, available_memory, estimate_fit, gpu_memory
from engine.gguf_info import GGUFInfo, read_gguf_info

__all__ = ["ModelManagerViewModel"]

log = logging.getLogger("hearth.ui")

PROGRESS_EVERY_S = 0.1  # at most ten progress updates a second reach the view
SAVE_DELAY_MS = 400  # settings are written once the person stops turning a spin box


@dataclass
class _Job:
    """A download in progress (loop thread only)."""

    download: Download | None = None
    shown: DownloadProgress | None = None  # the latest progress delivered to the view


@dataclass
class _Check:
    """A verification in progress: bytes hashed so far, and a way to stop it."""

    total: int
    done: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class _Scan:
    models: list[LibraryModel]
    infos: dict[str, tuple[tuple[int, int], GGUFInfo | str]]  # path -> (size, mtime), info or error
    resolved: dict[str, str]  # model id -> its resolved path
    free: int
    gpu: GpuMemory | None
    settings: LoadSettings | None
    warning: str | None


class ModelManagerViewModel(QObject):
    rows_changed = Signal()  # the list of models changed: read `rows`
    model_changed = Signal(str)  # one model's row or details changed: read row(id) / details(id)
    settings_changed = Signal(object)  # LoadSettings read from the file (or reset): refill the form
    message = Signal(str, str)  # (kind "ok" | "info" | "error", text) for the person
    added = Signal(str)  # the id of a model just added

    def __init__(
        self,
        library: ModelLibrary,
        settings_file: SettingsFile,
        service: ChatBackend,
        *,
        settings: LoadSettings | None = None,
        endpoint: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._library = library
        self._settings_file = settings_file
        self._service = service
        self._endpoint = endpoint  # None: the Hub (HF_ENDPOINT); tests pass a local server
        self._settings = settings or LoadSettings()
        self._settings_known = settings is not None
        self._models: list[LibraryModel] = []
        self._infos: dict[str, tuple[tuple[int, int], GGUFInfo | str]] = {}
        self._resolved: dict[str, str] = {}
        self._free = 0
        self._gpu: GpuMemory | None = None
        self._loaded_path: str | None = None
        self._downloads: dict[str, _Job] = {}
        self._checks: dict[str, _Check] = {}
        self._busy: set[str] = set()  # ids being removed
        self._loading: str | None = None  # the id `use` is loading
        self._work: set[asyncio.Future[Any]] = set()  # downloads and checks, for shutdown
        self._refresh_lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self._save_later)
        self._saves: set[asyncio.Future[bool]] = set()
        service.add_listener(self._on_service_state)
        self._on_service_state()
        # The Discover tab's side (issue 28): the Hub, pulled models joining this library.
        self.discover = DiscoverViewModel(
            library,
            refresh=self.refresh,
            n_ctx=lambda: self._settings.n_ctx,
            gpu_offload=lambda: bool(self._gpu_backend()),
            endpoint=endpoint,
            parent=self,
        )

    # -- reading ---------------------------------------------------------------------------
    @property
    def rows(self) -> list[ModelRow]:
        return [row_for(m, self._status(m)) for m in self._models]

    @property
    def settings(self) -> LoadSettings:
        return self._settings

    def row(self, model_id: str) -> ModelRow | None:
        m = self._find(model_id)
        return None if m is None else row_for(m, self._status(m))

    def details(self, model_id: str) -> ModelDetails | None:
        m = self._find(model_id)
        return None if m is None else details_for(m, self._status(m))

    def remove_question(self, model_id: str) -> str:
        m = self._find(model_id)
        return remove_question(m) if m is not None else ""

    async def refresh(self) -> None:
        """Re-read the library, the headers of new or changed files, free memory. Never raises."""
        async with self._refresh_lock:
            known = dict(self._infos)
            want_settings = not self._settings_known
            try:
                scan = await asyncio.to_thread(self._scan, known, want_settings)
            except LibraryError as e:
                self._say("error", e.message)
                return
            except Exception as e:  # a damaged folder, a permission problem: say it, keep the old list
                log.exception("reading the model library failed")
                self._say("error", f"Could not read the model list: {describe(e)}")
                return
            self._models, self._resolved = scan.models, scan.resolved
            self._infos.update(scan.infos)
            self._free, self._gpu = scan.free, scan.gpu
            if scan.settings is not None and not self._settings_known:
                self._settings_known = True
                self._settings = scan.settings
                self.settings_changed.emit(scan.settings)
            if scan.warning:
                self._say("info", scan.warning)
            self.rows_changed.emit()

    def _scan(self, known: dict[str, tuple[tuple[int, int], GGUFInfo | str]], want_settings: bool) -> _Scan:
        """Worker thread: everything `refresh` needs from the disk and the machine."""
        models = self._library.models()
        infos: dict[str, tuple[tuple[int, int], GGUFInfo | str]] = {}
        resolved: dict[str, str] = {}
        for m in models:
            if m.path is None:
                continue
            resolved[m.id] = str(_resolve(m.path))
            if not m.installed:
                continue
            try:
                st = m.path.stat()
            except OSError:
                continue
            stamp, key = (st.st_size, st.st_mtime_ns), str(m.path)
            if key in known and known[key][0] == stamp:
                continue
            try:
                infos[key] = (stamp, read_gguf_info(m.path))
            except ModelLoadError as e:
                infos[key] = (stamp, e.message)
            except OSError as e:
                infos[key] = (stamp, f"Could not read {m.path}: {e.strerror or e}")
        settings = self._settings_file.load() if want_settings else None
        warning = self._settings_file.warning if want_settings else None
        return _Scan(models, infos, resolved, available_memory(), gpu_memory(), settings, warning)

    # -- settings --------------------------------------------------------------------------
    def set_settings(self, **changes: Any) -> None:
        """Change load settings (n_ctx, n_threads, n_gpu_layers, flash_attn, share_engine); saved shortly after."""
        new = dataclasses.replace(self._settings, **changes)
        if new == self._settings:
            return
        problems = new.problems()
        if problems:
            self._say("error", " ".join(problems))
            return
        self._settings = new
        self._save_timer.start()
        self._changed_all()

    async def change_settings(self, **changes: Any) -> None:
        """`set_settings` from outside the model manager (Settings → Other apps: `share_engine`),
        possibly before its first refresh read the file: read it first, so that nothing else in it
        is written back as a default."""
        if not self._settings_known:
            saved = await asyncio.to_thread(self._settings_file.load)
            if not self._settings_known:
                self._settings, self._settings_known = saved, True
        self.set_settings(**changes)

    def load_settings_for(self, model_id: str) -> LoadSettings:
        """The settings a load of this model uses: the context no longer than it was trained for."""
        m = self._find(model_id)
        trained = trained_context(m, self._info(m)[0]) if m is not None else None
        n_ctx = min(self._settings.n_ctx, trained) if trained else self._settings.n_ctx
        return dataclasses.replace(self._settings, model=model_id, n_ctx=max(256, n_ctx))

    def _save_later(self) -> None:
        task = asyncio.ensure_future(self._save())
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)

    async def _save(self) -> bool:
        async with self._save_lock:
            settings = self._settings
            try:
                await asyncio.to_thread(self._settings_file.save, settings)
            except (OSError, ValueError) as e:
                self._say("error", f"Could not save the settings to {self._settings_file.path}: {e}")
                return False
            return True

    # -- actions ---------------------------------------------------------------------------
    async def download(self, model_id: str) -> None:
        """Download (or resume) a catalog model; ends with a message either way."""
        m = self._find(model_id)
        if m is None or model_id in self._downloads:
            return
        job = _Job()
        self._downloads[model_id] = job
        self._track_current()
        loop = asyncio.get_running_loop()
        feed: ProgressFeed[DownloadProgress] = ProgressFeed(
            loop, lambda p: self._on_progress(model_id, p), PROGRESS_EVERY_S
        )
        try:
            job.download = self._library.download(model_id, on_progress=feed.put, endpoint=self._endpoint)
            self.model_changed.emit(model_id)
            await asyncio.to_thread(job.download.run)
            await asyncio.to_thread(self._library.record_download, model_id, job.download)
        except asyncio.CancelledError:
            if job.download is not None:
                job.download.cancel()  # the thread would otherwise go on downloading
            raise
        except (DownloadError, LibraryError) as e:
            self._say("info" if e.code == "cancelled" else "error", e.message)
        except Exception as e:  # a bug or an OS error: say it in words, log the details
            log.exception("downloading %s failed", model_id)
            self._say("error", f"Could not download {m.name}: {describe(e)}")
        else:
            resumed = job.download.resumed_from
            self._say(
                "ok", f"{m.name}: downloaded and verified" + (f" (resumed from {gb(resumed)})" if resumed else "") + "."
            )
        finally:
            feed.close()
            del self._downloads[model_id]
            self.model_changed.emit(model_id)
        await self.refresh()

    def cancel_download(self, model_id: str) -> None:
        """Stop a download; its partial file stays and the next Download resumes it."""
        job = self._downloads.get(model_id)
        if job is not None and job.download is not None:
            job.download.cancel()

    async def verify(self, model_id: str) -> None:
        """Re-hash an installed model's file and say whether it is intact."""
        m = self._find(model_id)
        if m is None or model_id in self._checks:
            return
        check = _Check(total=max(1, m.size_bytes))
        self._checks[model_id] = check
        self._track_current()
        loop = asyncio.get_running_loop()
        feed: ProgressFeed[int] = ProgressFeed(loop, lambda done: self._on_checked(model_id, done), PROGRESS_EVERY_S)
        hashed = 0

        def on_bytes(n: int) -> None:  # worker thread
            nonlocal hashed
            hashed += n
            feed.put(hashed)

        self.model_changed.emit(model_id)
        try:
            result = await asyncio.to_thread(self._library.verify, model_id, on_bytes, check.stop.is_set)
        except asyncio.CancelledError:
            check.stop.set()
            raise
        except (LibraryError, DownloadError) as e:
            self._say("info" if e.code == "cancelled" else "error", e.message)
        except OSError as e:
            self._say("error", f"Could not read {m.path}: {e.strerror or e}")
        else:
            self._say("ok" if result.ok else "error", result.message)
        finally:
            feed.close()
            del self._checks[model_id]
            self.model_changed.emit(model_id)

    async def add(self, path: str | Path) -> str | None:
        """Add a GGUF file by path after reading its header; returns its id, or None (and a message)."""
        try:
            model, info = await asyncio.to_thread(self._library.add, path)
        except ModelLoadError as e:  # names the file and what is wrong with it
            self._say("error", e.message)
            return None
        except LibraryError as e:
            self._say("error", e.message)
            return None
        except OSError as e:
            self._say("error", f"Could not read {path}: {e.strerror or e}")
            return None
        existed = self._find(model.id) is not None
        if model.path is not None:
            try:
                st = await asyncio.to_thread(model.path.stat)
                self._infos[str(model.path)] = ((st.st_size, st.st_mtime_ns), info)
            except OSError:
                pass
        await self.refresh()
        verb = "is already in the list" if existed else "was added"
        self._say("ok", f"{model.name} {verb}: choose “Use this model” to chat with it.")
        self.added.emit(model.id)
        return model.id

    async def remove(self, model_id: str) -> bool:
        """Remove a model the person confirmed removing. False (and a message) if it cannot be."""
        m = self._find(model_id)
        if m is None:
            return False
        allowed = details_for(m, self._status(m)).remove
        if not allowed.enabled:
            self._say("error", allowed.why)
            return False
        self._busy.add(model_id)
        self.model_changed.emit(model_id)
        removed = False
        try:
            freed = await asyncio.to_thread(self._library.remove, model_id)
        except LibraryError as e:
            self._say("error", e.message)
        except OSError as e:
            self._say("error", f"Could not delete {m.path}: {e.strerror or e}")
        else:
            removed = True
            self._say("ok", f"Removed {m.name}" + (f"; freed {gb(freed)}." if freed else "."))
            if self._settings.model == model_id:  # the next start falls back to the bundled model
                self._settings = dataclasses.replace(self._settings, model=None)
                await self._save()
        finally:
            self._busy.discard(model_id)
            self.model_changed.emit(model_id)
        await self.refresh()
        return removed

    async def use(self, model_id: str) -> bool:
        """Load this model with the current settings (the engine frees the old one first);
        on success the settings are saved naming it, so the next start loads it too."""
        m = self._find(model_id)
        if m is None or m.path is None:
            return False
        allowed = details_for(m, self._status(m)).use
        if not allowed.enabled:
            self._say("error", allowed.why)
            return False
        settings = self.load_settings_for(model_id)
        self._loading = model_id
        self._changed_all()
        try:
            await self._service.load(
                str(m.path),
                n_ctx=settings.n_ctx,
                n_threads=settings.n_threads,
                n_gpu_layers=settings.n_gpu_layers,
                flash_attn=settings.flash_attn,
            )
        except EngineError as e:  # the status line shows it too (the service's error state)
            self._say("error", e.message)
            return False
        except Exception as e:
            log.exception("loading %s failed", m.path)
            self._say("error", f"Could not load {m.name}: {describe(e)}")
            return False
        else:
            self._settings = settings
            self._save_timer.stop()
            if await self._save():
                self._say("ok", f"{m.name} is loaded. Hearth will start with it next time.")
            return True
        finally:
            self._loading = None
            self._changed_all()

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop downloads (their partial files stay, to resume) and checks; write pending settings."""
        await self.discover.shutdown(timeout_s)
        for job in self._downloads.values():
            if job.download is not None:
                job.download.cancel()
        for check in self._checks.values():
            check.stop.set()
        if self._save_timer.isActive():
            self._save_timer.stop()
            await self._save()
        # Short sleeps rather than asyncio.wait(timeout=...): qasync keeps a cancelled
        # call_later's Qt timer armed until it fires, which would outlive a closing loop.
        pending = [f for f in (*self._work, *self._saves) if not f.done()]
        deadline = time.monotonic() + timeout_s
        while any(not f.done() for f in pending) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    # -- reactions -------------------------------------------------------------------------
    def _on_progress(self, model_id: str, p: DownloadProgress) -> None:
        job = self._downloads.get(model_id)
        if job is not None:
            job.shown = p
            self.model_changed.emit(model_id)

    def _on_checked(self, model_id: str, done: int) -> None:
        check = self._checks.get(model_id)
        if check is not None:
            check.done = done
            self.model_changed.emit(model_id)

    def _on_service_state(self, *_state: object) -> None:
        info = self._service.model_info
        self._loaded_path = str(_resolve(Path(info.path))) if info is not None else None
        self._changed_all()

    def _changed_all(self) -> None:
        for m in self._models:
            self.model_changed.emit(m.id)

    def _track_current(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._work.add(task)
            task.add_done_callback(self._work.discard)

    def _say(self, kind: str, text: str) -> None:
        self.message.emit(kind, text)

    # -- what is known about a model -----------------------------------------------------------
    def _find(self, model_id: str) -> LibraryModel | None:
        return next((m for m in self._models if m.id == model_id), None)

    def _status(self, m: LibraryModel) -> ModelStatus:
        info, error = self._info(m)
        job, check = self._downloads.get(m.id), self._checks.get(m.id)
        return ModelStatus(
            info=info,
            header_error=error,
            fit=self._fit(m, info),
            loaded=self._loaded_path is not None and self._resolved.get(m.id) == self._loaded_path,
            downloading=job is not None,
            progress=job.shown if job is not None else None,
            cancellable=job is not None and job.download is not None,
            checked=(check.done, check.total) if check is not None else None,
            busy=m.id in self._busy,
            free_bytes=self._free,
            gpu_backend=self._gpu_backend(),
            service_state=self._service.model_state,
            loading=self._loading,
        )

    def _info(self, m: LibraryModel) -> tuple[GGUFInfo | None, str | None]:
        """The header as last read (None until then), or why it could not be read."""
        cached = self._infos.get(str(m.path)) if m.installed and m.path is not None else None
        if cached is None:
            return None, None
        value = cached[1]
        return (value, None) if isinstance(value, GGUFInfo) else (None, value)

    def _gpu_backend(self) -> bool | None:
        """Whether the engine's llama.cpp can offload to a GPU; None until a model has loaded."""
        info = self._service.model_info
        return None if info is None else info.gpu_offload

    def _fit(self, m: LibraryModel, info: GGUFInfo | None) -> Fit | None:
        if info is None:
            return None
        s = self.load_settings_for(m.id)
        return estimate_fit(
            info,
            n_ctx=s.n_ctx,
            available_bytes=self._free,
            gpu=self._gpu,
            gpu_offload_supported=bool(self._gpu_backend()),
            n_gpu_layers=s.n_gpu_layers,
        )


def _resolve(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except OSError:
        return path
