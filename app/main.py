"""The `hearth` command's composition root: the one module that sees both the CLI and the UI.

The CLI (app.cli) never imports Qt, so a terminal command does not pay for loading it; the
commands that need Qt, the window and `hearth bench` (stream, scale and render), are handed to it here and
imported only when chosen; so is `hearth serve` (app.server), which the window can host too.
"""

from __future__ import annotations

from typing import Any

from app.cli.main import FrontEnds
from app.cli.main import main as cli_main


def _window(**kwargs: Any) -> int:
    from app.server.hosted import start_hosted
    from app.server.shared_host import host_engine
    from app.ui.launch import run_window

    return run_window(**kwargs, start_server=start_hosted, share_engine=host_engine)


async def _share_engine(*, prepare_only: bool = False, **kwargs: Any) -> Any:
    """`hearth ask` hosting its engine. The server's modules are imported in a thread, so that
    importing them holds up nothing on this loop; `prepare_only`: that alone (while the model
    loads), hosting nothing."""
    import asyncio
    import importlib

    shared_host = await asyncio.to_thread(importlib.import_module, "app.server.shared_host")
    return None if prepare_only else await shared_host.host_engine(**kwargs)


def _serve(*args: Any) -> int:
    from app.server.command import run_serve

    return run_serve(*args)


def _bench(**kwargs: Any) -> int:
    from app.ui.bench import run_bench

    return run_bench(**kwargs)


def _bench_scale(**kwargs: Any) -> int:
    from app.ui.bench_scale import run_scale_bench

    return run_scale_bench(**kwargs)


def _bench_render(**kwargs: Any) -> int:
    from app.ui.bench_render import run_render_bench

    return run_render_bench(**kwargs)


def main(argv: list[str] | None = None) -> int:
    return cli_main(
        argv,
        front_ends=FrontEnds(
            window=_window,
            bench=_bench,
            bench_scale=_bench_scale,
            bench_render=_bench_render,
            serve=_serve,
            share_engine=_share_engine,
        ),
    )
