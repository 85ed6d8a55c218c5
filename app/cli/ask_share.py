"""`hearth ask` and the one engine per machine (issue 26): attach, or host while it answers.

Before anything loads, `plan` says what this answer does with the local model: attach to the
Hearth process that runs it (the window, `hearth serve`, another `hearth ask`); or, when none
runs, win the host's lock and host the engine itself while it answers, so that asks started
meanwhile attach to it instead of loading a copy each; or load a private copy (--no-share,
HEARTH_NO_SHARE, `share_engine: false` in settings.json, a provider answers, a host runs another
model).

`AskHost` starts hosting once the model is loaded, before its own answer starts (the server's
modules were imported off the loop while the model loaded), so that asks waiting for it attach
while it answers; at the end it `finish`es: no new clients, the attached answers run to their end
(said on stderr), then the lock goes.
Must not: import app.server (handed in by app.main as `share_engine`) or Qt.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.core.engine_share import Attach, Claimed, attach_or_claim, live_host
from app.core.models.library import ModelLibrary

__all__ = ["AskHost", "model_id", "plan"]

log = logging.getLogger(__name__)


def model_id(model: Path, library: ModelLibrary) -> str:
    entry = library.by_path(model)
    return entry.id if entry is not None else model.stem.lower()


def plan(args: argparse.Namespace, model: Path, library: ModelLibrary, *, can_host: bool) -> Attach | Claimed | None:
    """Attach, host (the lock won), or None: a private engine. A host that is loading the model
    is waited for (said on stderr after a moment)."""
    if args.provider or getattr(args, "no_share", False) or os.environ.get("HEARTH_NO_SHARE"):
        return None
    if not args.settings.share_engine:  # turned off in settings.json (Settings → Other apps)
        return None

    def waiting() -> None:
        print("hearth: waiting for another Hearth process to load the model…", file=sys.stderr, flush=True)

    wanted = model_id(model, library)
    decided = attach_or_claim(wanted, waiting=waiting)
    if isinstance(decided, Claimed) and not can_host:  # this build cannot serve: load a private copy
        decided.lock.release()
        return None
    if decided is None and (other := live_host()) is not None:
        # The host's model is the person's choice there (a window's): it is not swapped under them.
        print(
            f"hearth: note: the shared engine ({other.front_end}, pid {other.pid}) runs "
            f"{other.model_id or 'no model'}; this answer loads {wanted} in an engine of its own",
            file=sys.stderr,
            flush=True,
        )
    return decided


class AskHost:
    """Hosting this answer's engine, from the moment its model is loaded to `finish`."""

    def __init__(self, claimed: Claimed, share_engine: Callable[..., Awaitable[Any]]) -> None:
        self._claimed = claimed
        self._share_engine = share_engine
        self._host: Any = None
        self._started = False
        # The server's modules, imported in a thread while the store opens and the model loads.
        self._prepared = asyncio.ensure_future(share_engine(prepare_only=True))

    async def start(self, *, engine: Any, local: Callable[[], tuple[str, str, int] | None], data_dir: Path) -> None:
        """Host now (the model is loaded). A failure is logged: this answer goes on unshared."""
        from app.core.providers import KeyStore, ProvidersFile
        from engine.wire import load_formats

        self._started = True
        try:
            await self._prepared
            self._host = await self._share_engine(
                engine=engine,
                local=local,
                providers=ProvidersFile(data_dir, set(load_formats())),
                keys=KeyStore(),
                front_end="ask",
                lock=self._claimed.lock,
            )
        except Exception:  # hosting failed: this answer is unharmed; the lock went with it
            log.exception("hosting the engine for other Hearth processes failed")

    async def finish(self) -> None:
        """After this process's answer: let the attached answers end, then stop hosting (or let
        the lock go when hosting never started)."""
        if not self._started:
            self._prepared.cancel()
            self._claimed.lock.release()
            return
        if self._host is None:
            return

        def say(answers: int) -> None:
            what = (
                "another Hearth process's answer"
                if answers <= 1
                else f"the answers of other Hearth processes ({answers})"
            )
            print(f"hearth: finishing {what} before exiting…", file=sys.stderr, flush=True)

        await self._host.finish(say)
