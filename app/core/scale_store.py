"""A big generated store for `hearth bench scale`: 10,000 conversations, 1,000,000 messages.

    python -m app.core.scale_store [--conversations N] [--messages N] [--out PATH]

Text is varied English (sentences assembled from a vocabulary with a Zipf-like spread of
common and rare words, plus names, places and numbers), so full-text search has common
words, rare ones and prefixes to find. Every conversation is a chain of user/assistant
turns with a generation per answer, the last conversation has 1,000 messages (opening it is
measured) and a few are pinned. Generations look like a person's history for `hearth stats`:
three routes (a small local model, a bigger local one, a remote "provider: model") with their
own TTFT and tokens/s spreads, mostly completed, some cancelled (user, timeout), failed (a
few error codes) or interrupted, retrieval on some answers; each conversation has its title
job (and some a summary job) with a latency. Speed: one migrated database (the real
migrations, so the schema is exactly the app's), then raw `executemany` inside one
transaction, the search index filled by its own triggers as the app's writes fill it. The
result is cached under ~/.cache/hearth/ by version, size and schema, so reruns are quick.

Qt-free and store-level only; it never touches a person's data directory.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LONG_CONVERSATION", "ScaleSpec", "build", "cached", "queries"]

VERSION = 2  # bump when what is generated changes: the cache key includes it (2: varied generations, jobs)
LONG_CONVERSATION = 1_000  # messages in the last conversation (the one the bench opens)
_PINNED_EVERY = 997  # a handful of pinned chats, as people have

_COMMON_WORDS = """the a to of and in is it you that for on with as this be are can your at by or from not have
an will if but use more one about what when there which how all so they we would make some time like
also each other into has then than them may just should first only because very well any most need
these out up could over new same way even such know"""
_COMMON = _COMMON_WORDS.split()
_TOPICS = {
    "cooking": "sourdough starter flour water yeast oven bake crust crumb dough knead proof rise salt butter garlic "
    "onion tomato basil pasta risotto broth simmer roast pan skillet recipe spice cumin paprika ginger "
    "lemon vinegar olive caramelize braise ferment kimchi miso noodle dumpling",
    "travel": "lisbon porto kyoto osaka berlin prague vienna train ticket hostel hotel museum itinerary flight "
    "airport luggage passport visa ferry island beach mountain hike trail tram neighbourhood cafe "
    "market cathedral castle harbour budget booking",
    "code": "python function variable class module import error exception traceback async await thread process "
    "database query index sqlite migration schema test pytest refactor commit branch merge rebase "
    "compiler pointer memory cache latency benchmark profile regex parser json yaml docker kernel",
    "garden": "tomatoes seedlings compost soil mulch prune rose lavender basil watering drip irrigation aphids "
    "ladybugs greenhouse raised bed perennial annual bulbs tulip dahlia fertilizer nitrogen shade "
    "sunlight frost harvest orchard apple pear zucchini squash",
    "money": "budget savings mortgage interest rate inflation pension index fund portfolio dividend tax invoice "
    "receipt expense spreadsheet loan credit debit insurance premium deductible salary freelance "
    "retirement emergency allowance",
    "health": "sleep exercise running marathon stretching posture protein fiber vitamin hydration stress "
    "meditation breathing yoga cycling swimming knee ankle physiotherapy cardio strength routine "
    "recovery appointment symptom allergy",
    "writing": "chapter draft outline character plot dialogue narrator metaphor paragraph essay thesis argument "
    "citation editor revision manuscript poem stanza rhyme lighthouse keeper storm novel villain "
    "heroine prologue epilogue",
}
_NAME_LIST = (
    "Amara Bastien Chiara Dmitri Elif Farah Gunnar Hana Ines Jonas Keiko Lior Mateus Nadia Oskar Priya "
    "Quentin Rosa Sven Tomasz Ulla Valentina Wei Ximena Yusuf Zofia"
)
_NAMES = _NAME_LIST.split()
_OPENERS = (
    "Can you",
    "Could you",
    "Please",
    "How do I",
    "What is the best way to",
    "Why does",
    "Help me",
    "Is it possible to",
    "Explain how to",
    "Give me",
)
_SUFFIXES = ("ing", "ed", "s", "er", "ly", "ness", "ation", "able")


@dataclass(frozen=True)
class ScaleSpec:
    conversations: int = 10_000
    messages: int = 1_000_000
    long_conversation: int = LONG_CONVERSATION
    seed: int = 12

    def key(self) -> str:
        from store.migrations import MIGRATIONS

        schema = MIGRATIONS[-1].name.split("_", 1)[0]
        return f"scale-v{VERSION}-s{schema}-{self.conversations}c-{self.messages}m-seed{self.seed}"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hearth"


def cached(spec: ScaleSpec, *, log: bool = True) -> Path:
    """The generated store for `spec` (built on first use, then reused): `<dir>/hearth.db`,
    where `<dir>` can serve as a `--data-dir` for the CLI."""
    folder = cache_dir() / spec.key()
    path = folder / "hearth.db"
    if not (folder / "complete").exists() and (older := _older_schema(spec)) is not None:
        _migrate_copy(older, folder, log=log)
    if not (folder / "complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob("hearth.db*"):
            leftover.unlink()
        build(path, spec, log=log)
        (folder / "complete").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"), encoding="utf-8")
    return path


def _older_schema(spec: ScaleSpec) -> Path | None:
    """The same store cached at an earlier schema (the newest such), if any: what it holds does not
    depend on the schema, so migrating a copy of it (as a person's store is) replaces a rebuild."""
    same = f"scale-v{VERSION}-s*-{spec.conversations}c-{spec.messages}m-seed{spec.seed}"
    found = [f for f in cache_dir().glob(same) if f.name != spec.key() and (f / "complete").exists()]
    return max(found, key=lambda f: f.name, default=None)


def _migrate_copy(older: Path, folder: Path, *, log: bool) -> None:
    from store.backup import copy_database
    from store.migrations import migrate

    started = time.perf_counter()
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    partial.mkdir(parents=True, exist_ok=True)
    copy_database(older / "hearth.db", partial / "hearth.db")
    copied = time.perf_counter()
    applied = migrate(partial / "hearth.db")
    for backup in partial.glob("hearth.db.bak-*"):  # a generated store: the copy it came from is the backup
        backup.unlink()
    (partial / "complete").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"), encoding="utf-8")
    try:
        partial.rename(folder)
    except OSError:  # another process got there first: use theirs
        for leftover in partial.iterdir():
            leftover.unlink()
        partial.rmdir()
    if log:
        print(
            f"scale store: copied {older.name} ({copied - started:.1f} s) and migrated it "
            f"({', '.join(applied)}: {time.perf_counter() - copied:.1f} s)",
            file=sys.stderr,
        )


def _vocabulary(rng: random.Random) -> tuple[list[str], list[str]]:
    """Words with a long tail: topic words, and rarer derived words that few messages share."""
    topic_words = [w for words in _TOPICS.values() for w in words.split()]
    rare = [w + rng.choice(_SUFFIXES) for w in topic_words for _ in range(2)]
    rare += [f"{rng.choice(topic_words)}{rng.randint(10, 9999)}" for _ in range(3000)]  # part numbers, codes
    return topic_words, rare


class _Text:
    """Sentence and message generator; deterministic for a seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.topics = {name: words.split() for name, words in _TOPICS.items()}
        self.topic_words, self.rare = _vocabulary(rng)

    def sentence(self, topic: str) -> str:
        rng, words = self.rng, self.topics[topic]
        out = []
        for _ in range(rng.randint(6, 16)):
            roll = rng.random()
            if roll < 0.45:
                out.append(rng.choice(_COMMON))
            elif roll < 0.85:
                out.append(rng.choice(words))
            elif roll < 0.93:
                out.append(rng.choice(self.topic_words))
            elif roll < 0.97:
                out.append(rng.choice(self.rare))
            else:
                out.append(rng.choice(_NAMES))
        text = " ".join(out)
        return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "?", "!"))

    def question(self, topic: str) -> str:
        return f"{self.rng.choice(_OPENERS)} {self.sentence(topic).lower()}"

    def answer(self, topic: str) -> str:
        rng = self.rng
        parts = [self.sentence(topic) for _ in range(rng.randint(2, 7))]
        if rng.random() < 0.25:
            parts.append("\n\n- " + "\n- ".join(self.sentence(topic) for _ in range(rng.randint(2, 4))))
        if topic == "code" and rng.random() < 0.3:
            parts.append("\n\n```python\ndef example(value):\n    return value * 2\n```")
        return " ".join(parts)


# (label, share of conversations, TTFT median ms, tokens/s mean): the routes answers came from
_ROUTES = (
    ("SmolLM2-135M-Instruct", 0.7, 24.0, 140.0),
    ("Qwen2.5-7B-Instruct-Q4_K_M", 0.2, 180.0, 18.0),
    ("lan-box: llama-3.1-70b", 0.1, 450.0, 35.0),
)
_FAILURES = ("context_full", "engine_crashed", "unreachable", "rate_limited")


def _route(rng: random.Random) -> tuple[str, float, float]:
    roll = rng.random()
    for label, share, ttft, tps in _ROUTES:
        if roll < share:
            return label, ttft, tps
        roll -= share
    return _ROUTES[0][0], _ROUTES[0][2], _ROUTES[0][3]


def _generation(
    rng: random.Random, message_id: int, route: tuple[str, float, float], at: float, tokens: int
) -> tuple[object, ...]:
    """One answer's generation row: its end (mostly completed) and metrics spread as measured ones are."""
    label, ttft_median, tps_mean = route
    roll = rng.random()
    state, cancel, code = "completed", None, None
    stop: str | None = "eog" if rng.random() < 0.95 else "length"
    if roll >= 0.925:
        stop = None
        if roll < 0.955:
            state, cancel = "cancelled", "user"
        elif roll < 0.96:
            state, cancel = "cancelled", "timeout"
        elif roll < 0.99:
            state, code = "failed", rng.choice(_FAILURES)
        else:
            state = "interrupted"
    streamed = state != "failed" or rng.random() < 0.3  # most failures come before the first token
    ttft = rng.lognormvariate(math.log(ttft_median), 0.5) if streamed else None
    tps = max(1.0, rng.gauss(tps_mean, tps_mean * 0.12)) if streamed else None
    total = (ttft or 0.0) + (tokens / tps * 1000 if tps else 0.0)
    retrieval = rng.lognormvariate(math.log(40.0), 0.7) if rng.random() < 0.12 else None
    done = state != "interrupted"
    return (
        message_id,
        label,
        state,
        cancel,
        code,
        tokens // 3 + 20,
        tokens if streamed else 0,
        rng.lognormvariate(math.log(4.0), 0.4),
        ttft,
        tps,
        total if done else None,
        rng.lognormvariate(math.log(3.0), 0.6) if done else None,
        retrieval,
        at,
        at + total / 1000 if done else None,
        stop,
    )


def _jobs(rng: random.Random, cid: int, created: float, last: float) -> list[tuple[object, ...]]:
    """The conversation's title job, and a summary job for one in five, as the queue leaves them."""
    out: list[tuple[object, ...]] = []
    for kind, at in (("title", created + 1.0), *((("summary", last),) if cid % 5 == 0 else ())):
        latency = rng.lognormvariate(math.log(300.0 if kind == "title" else 1500.0), 0.5)
        failed = rng.random() < 0.02
        out.append(
            (kind, cid, "failed" if failed else "done", at, at + latency / 1000, latency,
             None if failed else "ok", "engine_crashed" if failed else None)
        )  # fmt: skip
    return out


def _split(total: int, conversations: int, long_one: int) -> list[int]:
    """Messages per conversation (even numbers: user/assistant pairs); the last one is long."""
    if conversations == 1:
        return [total - total % 2]
    rest = max(0, total - long_one)
    each, extra = divmod(rest // 2, conversations - 1)
    counts = [2 * (each + (1 if i < extra else 0)) for i in range(conversations - 1)]
    return [*counts, long_one]


def build(path: Path, spec: ScaleSpec, *, log: bool = True) -> None:
    """Write the store for `spec` to `path` (which must not exist yet)."""
    from store.migrations import migrate

    started = time.perf_counter()
    migrate(path)
    rng = random.Random(spec.seed)
    metrics = random.Random(spec.seed + 1)  # apart from the text's, so the text stays as before
    text = _Text(rng)
    topics = list(_TOPICS)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -200000")
    counts = _split(spec.messages, spec.conversations, spec.long_conversation)
    now = time.time()
    t0 = now - 400 * 86_400  # the first chat began about 13 months ago
    step = (now - t0 - 3600) / max(1, spec.conversations)
    message_id = 0
    conn.execute("BEGIN")
    try:
        for cid, count in enumerate(counts, start=1):
            topic = topics[cid % len(topics)]
            created = t0 + cid * step
            title = text.sentence(topic)[:60].rstrip(" .?!")
            rows: list[tuple[int, int, int | None, str, str, float, float]] = []
            route = _route(metrics)
            gens: list[tuple[object, ...]] = []
            parent: int | None = None
            at = created
            for i in range(count):
                message_id += 1
                at += rng.uniform(5, 90)
                user = i % 2 == 0
                content = text.question(topic) if user else text.answer(topic)
                rows.append((message_id, cid, parent, "user" if user else "assistant", content, at, at))
                if not user:
                    gens.append(_generation(metrics, message_id, route, at, len(content) // 4))
                parent = message_id
            pinned = created if cid % _PINNED_EVERY == 0 else None
            conn.execute(
                "INSERT INTO conversation (id, title, created_at, updated_at, settings_json, leaf_id, "
                "pinned_at) VALUES (?, ?, ?, ?, '{}', ?, ?)",
                (cid, title, created, at, parent, pinned),
            )
            conn.executemany(
                "INSERT INTO message (id, conversation_id, parent_id, role, content, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO generation (message_id, model, state, cancel_reason, error_code, prompt_tokens, "
                "completion_tokens, command_latency_ms, ttft_ms, tokens_per_s, total_ms, finalization_lag_ms, "
                "retrieval_ms, created_at, finished_at, stop_reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                gens,
            )
            conn.executemany(
                "INSERT INTO job (kind, conversation_id, state, attempts, created_at, finished_at, latency_ms, "
                "outcome, error) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?)",
                _jobs(metrics, cid, created, at),
            )
            if log and cid % 1000 == 0:
                print(
                    f"  {cid:,} conversations, {message_id:,} messages ({time.perf_counter() - started:.0f} s)",
                    file=sys.stderr,
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    if log:
        size = path.stat().st_size / 1e6
        print(
            f"generated {path} ({spec.conversations:,} conversations, {message_id:,} messages, {size:,.0f} MB) "
            f"in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )


def queries(count: int = 200, *, seed: int = 7) -> list[str]:
    """Varied searches a person might type: common and rare words, two words, a prefix, a name."""
    rng = random.Random(seed)
    topic_words, rare = _vocabulary(random.Random(12))
    kinds = _query_kinds(rng, topic_words, rare)
    return [next(kinds) for _ in range(count)]


def _query_kinds(rng: random.Random, topic_words: list[str], rare: list[str]) -> Iterator[str]:
    while True:
        yield rng.choice(topic_words)  # a topic word: thousands of matches
        yield f"{rng.choice(topic_words)} {rng.choice(topic_words)}"  # two words, both must match
        yield rng.choice(rare)  # a rare word: a few matches
        yield rng.choice(topic_words)[: rng.randint(3, 5)]  # typed so far: a prefix
        yield rng.choice(_NAMES)
        yield f"{rng.choice(_NAMES)} {rng.choice(topic_words)}"
        yield rng.choice(_COMMON)  # a very common word
        yield "zzyzx"  # nothing matches


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.core.scale_store", description=__doc__.split("\n\n")[0])
    p.add_argument("--conversations", type=int, default=ScaleSpec.conversations)
    p.add_argument("--messages", type=int, default=ScaleSpec.messages)
    p.add_argument("--out", type=Path, help="write here instead of the cache (a new file)")
    args = p.parse_args(argv)
    spec = ScaleSpec(args.conversations, args.messages, min(LONG_CONVERSATION, args.messages // 2 * 2))
    if args.out is not None:
        if args.out.exists():
            print(f"{args.out} already exists; give a new file", file=sys.stderr)
            return 2
        build(args.out, spec)
        print(args.out)
        return 0
    print(cached(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
