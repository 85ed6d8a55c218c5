"""The `hearth` command's composition root: the one module that sees both the CLI and the UI.

The CLI (app.cli) never imports Qt, so a terminal command does not pay for loading it; the
two commands that need Qt, the window and `hearth bench`, are handed to it here and
imported only when chosen.
"""

from __future__ import annotations

from typing import Any

from app.cli.main import FrontEnds
from app.cli.main import main as cli_main


def _window(**kwargs: Any) -> int:
    from app.ui.launch import run_window

    return run_window(**kwargs)


def _bench(**kwargs: Any) -> int:
    from app.ui.bench import run_bench

    return run_bench(**kwargs)


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, front_ends=FrontEnds(window=_window, bench=_bench))
