"""`Hidden`: a secret (an API key, a Hugging Face token) on its way back from a worker thread.

qasync's executor logs each call's arguments and its result at DEBUG level, so a key passed to or
returned from `asyncio.to_thread` would reach any DEBUG log. Pass secrets in closures, and return
them wrapped in `Hidden`, whose repr says nothing.
"""

from __future__ import annotations

__all__ = ["Hidden"]


class Hidden:
    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"
