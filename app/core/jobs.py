"""Background jobs, run off the stream path: a conversation's title, and the running summary
that the "summarize" overflow policy sends in place of its oldest turns, made by the model.

Owns the worker of the window process: it claims jobs from the store's persisted queue
(store.jobs) while the local model is idle, runs each through the engine at low priority, and
records its latency and outcome. A person's message preempts it: the chat service calls
`preempt` before the turn's command reaches the engine, the job's answer stops within a token
(or one prompt chunk), the turn runs, and the job goes back to the queue to run again later.
A job that fails never touches the conversation and is retried with backoff; one left by a
process that died is taken over (store.jobs). With no local model loaded, jobs wait.
A summary covers what no longer fits half of the chat's context (the engine measures it with
the rolling policy), adding to the newest summary on the path: the model reads that summary
and the turns after it, never the whole conversation again.
Must not: hold the stream path, run two jobs at once, or write anything but through the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections.abc import Callable

from app.core.chat_service import ChatService
from app.core.chat_settings import ChatSettings
from app.core.errors import describe
from app.core.model_state import ModelState
from engine.client import GenerationStream
from engine.commands import ChatMessage, Generate, Sampling
from engine.events import Cancelled, Delta, Failed, Final
from store import Store
from store.jobs import SUMMARY, JobRow
from store.rows import ConversationChange, MessageRow

__all__ = ["POLL_S", "SUMMARY_INSTRUCTION", "TITLE_INSTRUCTION", "JobWorker", "clean_summary", "clean_title"]

log = logging.getLogger(__name__)

POLL_S = 5.0  # how often the queue is looked at without a wake-up (jobs another process queued)
TITLE_INSTRUCTION = (
    "You name conversations. Reply with a short title of 2 to 6 words for the conversation below, and nothing else."
)
_EXCERPT = 600  # characters of the question and of the answer the title is made from
SUMMARY_INSTRUCTION = "You summarize conversations."
# The conversation is quoted and the request comes after it: asked first, a small model
# (the bundled one) carried the transcript on instead of summarizing it.
_SUMMARY_REQUEST = (
    "Summarize {what} in 2 to 5 sentences, at most 150 words: what the user asked about and "
    "what the assistant answered, with the names, numbers and decisions needed to continue it. "
    "Write the summary only."
)
_SUMMARY_TOKENS = 220


class _Preempted(Exception):
    """A person's message came: the job goes back to the queue."""


def clean_title(text: str) -> str:
    """The model's reply as a title: its first line, without quotes, markup, a "Title:" label or
    a final full stop; "" when nothing is left."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(?:#+|\*+|-)\s*", "", line)
    line = re.sub(r"^(?:title|conversation title)\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'“”‘’*_`").strip().rstrip(".").strip()
    return " ".join(line.split())[:60]


def clean_summary(text: str) -> str:
    """The model's reply as a summary: without a "Here is a summary…:" or "Summary:" opening,
    quote marks around it, or a last sentence cut off by the token limit."""
    text = text.strip().strip('"').strip()
    text = re.sub(r"^(?:here is|here's) (?:a |the )?summary[^:\n]*:\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^summary\s*:\s*", "", text, flags=re.IGNORECASE).strip().strip('"').strip()
    end = max(text.rfind(". "), text.rfind(".\n"), text.rfind("!"), text.rfind("?"))
    if text and text[-1] not in ".!?" and end > len(text) // 2:
        text = text[: end + 1]
    return text.strip()


class JobWorker:
    """`on_change(change)`: a conversation's row changed (its new title), on the loop's thread."""

    def __init__(
        self,
        store: Store,
        service: ChatService,
        *,
        on_change: Callable[[ConversationChange], None] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self._store = store
        self._service = service
        self._on_change = on_change
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._stream: GenerationStream | None = None
        self._preempted = False
        self._task: asyncio.Task[None] | None = None
        # Negative: never a generation row's id. One per attempt: a late Cancel or stuck-engine
        # check for a preempted attempt must never hit the next attempt of the same job.
        self._ids = itertools.count(-1, -1)
        self.finished: list[tuple[int, str]] = []  # (job id, outcome) of the jobs this worker ended
        service.set_background(self)

    def start(self) -> None:
        """Start working (on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self.preempt()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        self._wake.set()

    @property
    def writing(self) -> bool:
        """A job's answer is being generated right now."""
        return self._stream is not None

    def preempt(self) -> None:
        """A person's turn is starting: stop the job's answer now (it runs again later)."""
        if self._stream is not None:
            self._preempted = True
            self._stream.cancel("user")

    def _idle(self) -> bool:
        return self._service.model_state is ModelState.READY and self._service.engine.pid is not None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
            self._wake.clear()
            try:
                while self._idle() and (job := await self._store.jobs.claim()) is not None:
                    await self._do(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is closing or broken: try again at the next wake-up
                log.exception("the background jobs' queue could not be read")

    async def _do(self, job: JobRow) -> None:
        started = time.perf_counter()
        try:
            outcome = await (self._summary(job) if job.kind == SUMMARY else self._title(job))
        except _Preempted:
            await self._store.jobs.put_back(job)
            self._wake.set()  # once the person's answer is done
            return
        except Exception as e:  # noqa: BLE001 - any failure: retried later, the conversation untouched
            await self._store.jobs.fail(job, describe(e), (time.perf_counter() - started) * 1000)
            self.finished.append((job.id, "failed"))
            return
        await self._store.jobs.finish(job, (time.perf_counter() - started) * 1000, outcome)
        self.finished.append((job.id, outcome))

    async def _title(self, job: JobRow) -> str:
        messages = await self._store.messages(job.conversation_id)
        question = next((m.content for m in messages if m.role == "user"), "")
        answer = next((m.content for m in messages if m.role == "assistant" and m.content), "")
        if not question:
            return "nothing to title"
        prompt = (
            ChatMessage("system", TITLE_INSTRUCTION),
            ChatMessage("user", f"Question: {question[:_EXCERPT]}\n\nAnswer: {answer[:_EXCERPT]}"),
        )
        title = clean_title(await self._generate(job, prompt))
        if not title:
            raise RuntimeError("the model wrote no title")
        change = await self._store.jobs.set_model_title(job.conversation_id, title)
        if change is None:
            return "kept the person's title"
        if self._on_change is not None:
            self._on_change(change)
        return "titled"

    async def _summary(self, job: JobRow) -> str:
        info = self._service.model_info
        if info is None:
            raise RuntimeError("no model is loaded")
        cid = job.conversation_id
        rows = [m for m in await self._store.messages(cid) if m.role in ("user", "assistant") and m.content]
        chat, _ = ChatSettings.from_settings(await self._store.conversation_settings(cid))
        limit = chat.context_length if 0 < chat.context_length < info.n_ctx else info.n_ctx
        # What would not fit half the chat's context is what the summary covers.
        measured = await self._service.engine.measure(
            tuple(ChatMessage(m.role, m.content) for m in rows),
            Sampling(max_tokens=1, context_limit=limit // 2, overflow="rolling"),
        )
        if measured.error:
            raise RuntimeError(measured.error)
        if not measured.left_out:
            return "nothing to summarize yet"
        saved = await self._store.jobs.summaries(cid)
        cut = max(measured.left_out)
        since = max((i for i in range(cut + 1) if rows[i].id in saved), default=-1)
        if since == cut:
            return "summary up to date"
        before = saved.get(rows[since].id, "") if since >= 0 else ""
        # The model reads the summary so far and the turns after it, within its own context.
        room = max(1000, (info.n_ctx - _SUMMARY_TOKENS - 200) * 2)  # characters, at two per token at worst
        cut = _within(rows, since + 1, cut, room - len(before))
        turns = "\n\n".join(
            f"{'User' if m.role == 'user' else 'Assistant'}: {m.content}" for m in rows[since + 1 : cut + 1]
        )
        if before:
            text = (
                f"Here is a summary of the start of a conversation between a user and an assistant:\n\n"
                f'"""\n{before}\n"""\n\nThe conversation went on:\n\n"""\n{turns}\n"""\n\n'
                + _SUMMARY_REQUEST.format(what="the whole conversation, its start and how it went on")
            )
        else:
            text = (
                f'Here is a conversation between a user and an assistant:\n\n"""\n{turns}\n"""\n\n'
                + _SUMMARY_REQUEST.format(what="it")
            )
        summary = clean_summary(
            await self._generate(
                job, (ChatMessage("system", SUMMARY_INSTRUCTION), ChatMessage("user", text)), max_tokens=_SUMMARY_TOKENS
            )
        )
        if not summary:
            raise RuntimeError("the model wrote no summary")
        if not await self._store.jobs.put_summary(cid, rows[cut].id, summary):
            return "the messages were deleted"
        return f"summarized {cut + 1} messages"

    async def _generate(self, job: JobRow, prompt: tuple[ChatMessage, ...], *, max_tokens: int = 24) -> str:
        """The model's answer to `prompt`, at low priority: a person's turn preempts it."""
        self._preempted = False
        stream = self._service.engine.generate(
            Generate(
                next(self._ids),
                prompt,
                Sampling(temperature=0.2, max_tokens=max_tokens, repeat_penalty=1.1),
                remote=self._service.attached,  # None: this process's model; else the shared engine
            )
        )
        self._stream = stream
        parts: list[str] = []
        try:
            async for event in stream:
                if isinstance(event, Delta) and event.channel == "answer":
                    parts.append(event.text)
                elif isinstance(event, Cancelled):
                    raise _Preempted if self._preempted else RuntimeError("the title was cancelled")
                elif isinstance(event, Failed):
                    raise RuntimeError(event.message)
                elif isinstance(event, Final):
                    break
        finally:
            self._stream = None
        return "".join(parts)


def _within(rows: list[MessageRow], first: int, cut: int, room: int) -> int:
    """The last message from `first` to `cut` whose text, with those before it, fits `room`
    characters; at least one exchange. The rest waits for the next summary."""
    used = 0
    for i in range(first, cut + 1):
        used += len(rows[i].content) + 16
        if used > room and i > first + 1:
            end = i - 1
            while end > first + 1 and rows[end].role != "assistant":
                end -= 1
            return end
    return cut
