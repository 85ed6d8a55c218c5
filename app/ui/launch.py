"""The window's entry point: `run_window` builds everything, runs the loop, shuts down cleanly.

Owns the process-level lifecycle of the GUI: the display check, QApplication and the
qasync loop, the excepthook, the saved theme (before anything is shown), opening the
store, the conversation shown when the window last closed (open again before it shows),
starting the engine process and loading the model *after* the window has painted, and on
close: stopping a running answer, stopping downloads (their partial files stay, to
resume), waiting for pending saves, closing the store and the engine.
Must not: hold chat logic (app.ui.viewmodels.main), build widgets beyond MainWindow, or call
`sys.exit` (the CLI owns the exit code).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings

from app.core.chat_service import ChatService
from app.core.documents.chat_documents import DocumentRetrieval
from app.core.documents.embedders import choice_stamp, open_embedder
from app.core.documents.service import DocumentsService
from app.core.jobs import JobWorker
from app.core.model_state import ModelState
from app.core.models import ModelLibrary
from app.core.paths import db_path, default_model_path
from app.core.presets import PresetsFile
from app.core.providers import KeyStore, ProvidersFile
from app.core.responsiveness import tune_for_ui
from app.core.routes import Router
from app.core.settings import LoadSettings, SettingsFile
from app.core.tools.config import mcp_path
from app.ui.main_thread_gc import MainThreadGarbageCollector
from app.ui.qt_support import (
    NO_DISPLAY_MESSAGE,
    display_available,
    ensure_application,
    install_excepthook,
    new_event_loop,
    release_clipboard,
)
from app.ui.system_libs import x11_problem
from app.ui.viewmodels.documents import DocumentsViewModel
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.models import ModelManagerViewModel
from app.ui.viewmodels.presets import PresetsViewModel
from app.ui.viewmodels.providers import ProvidersViewModel
from app.ui.viewmodels.tools import ToolsViewModel
from app.ui.widgets.code_highlight import warm_up
from app.ui.windows.main_window import MainWindow
from app.ui.windows.serve_control import ServeControl, StartServer
from app.ui.windows.share_control import ShareControl, ShareEngine
from app.ui.windows.window_prefs import apply_saved_theme, open_prefs
from engine.client import AsyncEngine
from engine.errors import EngineError
from engine.wire import load_formats
from store import Store, StoreError

__all__ = ["run_window"]

log = logging.getLogger("hearth.ui")

SHUTDOWN_SAVE_TIMEOUT_S = 10.0
OPENING_NOTE_AFTER_S = 0.2  # a database that takes longer to open (a migration, a slow disk) says so


class _Reporter:
    """Where unexpected errors are shown: the status line once the window exists."""

    def __init__(self) -> None:
        self.target: Callable[[str], None] | None = None

    def __call__(self, message: str) -> None:
        if self.target is not None:
            self.target(message)


def run_window(
    *,
    data_dir: Path,
    model_path: Path,
    settings: LoadSettings | None = None,
    library: ModelLibrary | None = None,
    settings_file: SettingsFile | None = None,
    chat_template: str | None = None,
    start_server: StartServer | None = None,
    share_engine: ShareEngine | None = None,
) -> int:
    """Show the chat window until it is closed. Returns the process exit code.
    `start_server`: app.server.hosted.start_hosted (app.main hands it in); None: no serving.
    `share_engine`: app.server.shared_host.host_engine: once the model is loaded, this user's other
    Hearth processes (`hearth ask`) use the window's engine; None: not shared.

    2: no display to open a window on (the message on stderr says what to do instead);
    1: the database could not be opened; 0: closed normally.
    """
    if not display_available():
        sys.stderr.write(NO_DISPLAY_MESSAGE)
        return 2
    if (problem := x11_problem()) is not None:  # Qt would abort with its raw plugin error
        sys.stderr.write(problem)
        return 2
    app = ensure_application()
    app.setQuitOnLastWindowClosed(False)  # the loop ends when `_serve` has shut down
    report = _Reporter()
    loop = new_event_loop(app, report)
    tune_for_ui()
    restore_hook = install_excepthook(report)
    collector = MainThreadGarbageCollector(app)  # Qt objects are never freed off the UI thread
    prefs = open_prefs(Path(data_dir))  # the window's: theme, zoom, size and place
    apply_saved_theme(app, prefs)  # so that even "Opening your conversations…" has its colours
    try:
        settings = settings or LoadSettings()
        library = library or ModelLibrary(Path(data_dir), bundled_path=default_model_path())
        settings_file = settings_file or SettingsFile(Path(data_dir))
        return asyncio.run(
            _serve(
                Path(data_dir),
                Path(model_path),
                settings,
                library,
                settings_file,
                report,
                prefs,
                chat_template,
                start_server,
                share_engine,
            ),
            loop_factory=lambda: loop,
        )
    except StoreError as e:  # raised before the loop ran (_serve shows the ones it meets itself)
        sys.stderr.write(f"hearth: cannot open the conversation database: {e.message}\n")
        return 1
    finally:
        collector.stop()
        restore_hook()
        release_clipboard()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _tell(message: str) -> None:
    """A dialog with the reason, on the running loop (no nested event loop); returns when closed."""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Critical, "Hearth cannot open your conversations", message)
    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    box.finished.connect(lambda _result: _settle(closed))
    box.show()
    await closed
    box.deleteLater()


async def _open_store(path: Path) -> Store:
    """Open (and, after an upgrade, back up and migrate) the database in a worker thread: the
    loop never waits on the disk. When that takes long enough to notice, a small window says
    what is happening until the chat window can show."""
    opening = asyncio.ensure_future(asyncio.to_thread(Store.open, path))
    done, _ = await asyncio.wait({opening}, timeout=OPENING_NOTE_AFTER_S)
    if done:
        return opening.result()
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    note = QLabel(f"Opening your conversations…\n{path}")
    note.setWindowTitle("Hearth")
    note.setAlignment(Qt.AlignmentFlag.AlignCenter)
    note.setMargin(32)
    note.show()
    try:
        return await opening
    finally:
        note.close()
        note.deleteLater()


async def _serve(
    data_dir: Path,
    model_path: Path,
    settings: LoadSettings,
    library: ModelLibrary,
    settings_file: SettingsFile,
    report: _Reporter,
    prefs: QSettings,
    chat_template: str | None = None,
    start_server: StartServer | None = None,
    share_engine: ShareEngine | None = None,
) -> int:
    try:
        store = await _open_store(db_path(data_dir))
    except StoreError as e:
        sys.stderr.write(f"hearth: cannot open the conversation database: {e.message}\n")
        await _tell(e.message)  # started from a menu, nobody reads stderr
        return 1
    engine = AsyncEngine()
    try:
        # --chat-template holds for this run, whichever model is chosen; else each model's own choice.
        templates = (lambda _path: chat_template) if chat_template else library.template_for
        service = ChatService(store, engine, templates=templates)
        # One file and one key store, shared: what the Providers window saves, the next turn uses.
        formats = set(load_formats())
        providers_file = ProvidersFile(data_dir, formats)
        keys = KeyStore()
        presets_vm = PresetsViewModel(PresetsFile(data_dir))  # new chats start from its default preset
        # The chats' passages; the embedding model loads on first use, in a child process.
        retrieval = DocumentRetrieval(
            store.documents,
            load_embedder=lambda: open_embedder(data_dir, in_child=True, library=library),
            choice=lambda: choice_stamp(data_dir),
        )
        vm = MainViewModel(
            service,
            store,
            router=Router(providers_file, keys),
            chat_defaults=presets_vm.default_settings,
            documents=retrieval,
        )
        # Titles from the model, off the stream path; a person's message preempts them.
        jobs = JobWorker(store, service, on_change=vm.row_changed)
        models_vm = ModelManagerViewModel(library, settings_file, service)
        providers_vm = ProvidersViewModel(providers_file, keys, formats)
        # Your documents: indexed by a process of its own, suspended while an answer is generated.
        documents = DocumentsService(store.documents, data_dir)
        service.add_listener(lambda state: documents.set_answering(state is ModelState.GENERATING))
        documents_vm = DocumentsViewModel(documents)
        # Other apps on this computer, through the same engine (Settings → Other apps).
        serving = (
            ServeControl(start_server, service, store, data_dir, providers_file, keys, library, prefs)
            if start_server is not None
            else None
        )
        # This user's other Hearth processes, through the window's engine (Settings → Other apps).
        sharing = (
            ShareControl(
                share_engine,
                service,
                library,
                providers_file,
                keys,
                wanted=lambda: settings_file.load().share_engine,
                remember=lambda on: models_vm.change_settings(share_engine=on),
            )
            if share_engine is not None
            else None
        )
        window = MainWindow(
            vm,
            models=models_vm,
            providers=providers_vm,
            prefs=prefs,
            presets=presets_vm,
            serving=serving,
            documents=documents_vm,
            sharing=sharing,
            tools=ToolsViewModel(mcp_path(data_dir), store),  # mcp.json and each chat's tool choice
            max_tool_steps=lambda: settings_file.load().max_tool_steps,  # read at each message with tools
            stats=store,  # View → Statistics…
        )
        # Before it shows: its first frame is the chat the person left, and nothing typed can be
        # moved by a switch a moment later.
        await _reopen_last(window, store)
        report.target = window.status.show_notice
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        window.closed.connect(lambda: _settle(closed))
        _close_on_signals(window)
        window.show()
        await asyncio.sleep(0)  # let the window paint before the engine process starts
        # The first code block of a language would otherwise load its lexer mid-stream (5-120 ms).
        threading.Thread(target=warm_up, name="hearth-lexers", daemon=True).start()
        engines = _Engines(service, window, model_path, settings, sharing)
        await engines.start()
        jobs.start()
        try:
            await documents.start()  # what a quit or a crash left queued
            await documents_vm.refresh()  # the status line follows indexing from here
        except Exception:  # the chat works without it; the Documents window says what it can
            log.exception("starting the documents' indexing failed")
        if serving is not None and serving.wanted:  # it was on when the window last closed
            serving.toggle(True)
        await providers_vm.refresh()  # never raises: a broken providers.toml is reported
        try:
            await vm.refresh_conversations()
        except Exception as e:
            log.exception("reading the conversation list failed")
            window.show_problem(f"Could not read your conversations: {e}")
        vm.watch_conversations()  # what `hearth ask`, imports, other windows and the server save
        window.stats.preload_when_idle()  # the plotting library, off the UI thread: Statistics opens at once
        await closed
        report.target = None
        engines.cancel()  # a model still loading is shared with nobody; an attached window stops watching
        if sharing is not None:
            await sharing.shutdown()  # first: new answers from other processes go elsewhere
        if serving is not None:
            await serving.shutdown()
        await jobs.close()
        await documents.close()  # under a second; what was indexed is kept
        await retrieval.close()
        await models_vm.shutdown()
        await vm.shutdown(SHUTDOWN_SAVE_TIMEOUT_S)
        window.deleteLater()
        return 0
    finally:
        # Both block briefly (joining the engine process, draining queued writes): off the loop.
        await engine.aclose()
        await asyncio.to_thread(store.close)


async def _reopen_last(window: MainWindow, store: Store) -> None:
    """Show the conversation the window showed when it last closed; a new chat when there was
    none or it has been deleted since (by `hearth rm`, another window)."""
    last = window.layout_prefs.last_conversation()
    if last is None:
        return
    try:
        if await store.conversation(last) is not None:
            await window.vm.open_conversation(last)
    except Exception:  # a new chat rather than no window
        log.exception("opening the last conversation shown failed")


def _close_on_signals(window: MainWindow) -> None:
    """Ctrl+C or a polite kill closes the window the normal way, so pending saves land."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, window.close)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
            pass


class _Engines:
    """The window's model: answered through another Hearth process's engine that runs it already
    (ShareControl.try_attach), else loaded here after the window painted and then shared; an
    attached window loads its own when that host goes away."""

    def __init__(
        self,
        service: ChatService,
        window: MainWindow,
        model_path: Path,
        settings: LoadSettings,
        sharing: ShareControl | None,
    ) -> None:
        self._service, self._window, self._model_path, self._settings = service, window, model_path, settings
        self._sharing = sharing
        self._tasks: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        if self._sharing is not None and await self._sharing.try_attach(self._model_path):
            self._tasks.append(asyncio.ensure_future(self._sharing.watch_attached(self._load)))
            return
        await self._load()

    async def _load(self) -> None:
        loading = asyncio.ensure_future(_load_model(self._service, self._window, self._model_path, self._settings))
        self._tasks.append(loading)
        if self._sharing is not None:
            self._tasks.append(asyncio.ensure_future(self._sharing.start_when_loaded(loading)))

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()


async def _load_model(service: ChatService, window: MainWindow, model_path: Path, settings: LoadSettings) -> None:
    try:
        await service.load(
            str(model_path),
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            n_gpu_layers=settings.n_gpu_layers,
            flash_attn=settings.flash_attn,
        )
    except EngineError as e:
        # ModelFailed already put the model in the error state and the banner shows why;
        # this covers failures that never reached the engine (it could not start).
        if service.model_state is not ModelState.ERROR:
            window.show_problem(e.message)
    except Exception as e:
        log.exception("starting the engine failed")
        window.show_problem(f"The engine could not start: {e}")
