"""A client that goes away: noticed while its answer is worked on, so the work stops with it
(Starlette cancels a streaming response itself, but lets a plain one run to its end).
Must not: block, or read a request's body (call client_gone only once the body has been read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from starlette.requests import Request

__all__ = ["client_gone", "stopped", "unless_gone"]


async def client_gone(request: Request) -> None:
    """Returns when the client has closed its connection (call once its body has been read:
    uvicorn's receive() then waits for the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def stopped(task: asyncio.Future[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def unless_gone[T](work: Awaitable[T], gone: asyncio.Future[None]) -> T | None:
    """`work`'s result, or None when the client went away first (`work` is then cancelled)."""
    task: asyncio.Future[T] = asyncio.ensure_future(work)
    try:
        either: list[asyncio.Future[Any]] = [task, gone]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await stopped(task)
        raise
    if task.done():
        return task.result()
    await stopped(task)
    return None
