"""Generated material for `hearth bench docs` and tests/bench/bench_doc_search.py.

Owns two generators, both seeded (the same bytes every run):
- a store of N passages for search at scale (`build_search_store`): about 500 characters each
  of words drawn with Zipf frequencies (s = 1.1) from a 30,000-word generated vocabulary, 100 to
  a file, each with a random normalized 384-dimension vector (all-MiniLM-L6-v2's size) under the
  model name MODEL; `search_queries` draws questions of 3 to 8 words from the same distribution
  (so common words are in them, as in a person's question);
- a folder of files to index (`write_corpus`): Markdown with headings, plain text and HTML with
  a script and a style sheet, of English sentences built from a word list, with each file on a
  topic of its own, so the text reads like documents rather than random letters.

Must not: load a model, import Qt, or touch a real data dir (callers pass a temp dir).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from store import Store

__all__ = ["DIM", "MODEL", "build_search_store", "percentiles", "rss_mb", "search_queries", "write_corpus"]

DIM = 384
MODEL = "bench-random-384"
PER_FILE = 100
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


@dataclass(frozen=True)
class _Piece:  # what Documents.replace_passages reads of a passage
    text: str
    start: int
    end: int
    page: int | None
    heading: str | None


def _vocabulary(rng: np.random.Generator, size: int = 30_000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(1, 4))
        words.add("".join(SYLLABLES[int(i)] for i in rng.integers(0, len(SYLLABLES), n)))
    return sorted(words, key=lambda w: (len(w), w))  # short words are the common ones, as in a language


def _zipf(size: int, s: float = 1.1) -> npt.NDArray[np.float64]:
    p = 1.0 / np.arange(1, size + 1) ** s
    return p / p.sum()


def rss_mb() -> float:
    """This process's resident memory, MB (Linux; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def percentiles(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2)}


async def build_search_store(hearth: Store, passages: int, seed: int = 7) -> float:
    """Fill `hearth` with `passages` generated passages and vectors (one collection); seconds taken."""
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    vocab = np.array(_vocabulary(rng))
    p = _zipf(len(vocab))
    docs = hearth.documents
    cid = (await docs.create_collection("Bench")).id
    for f in range((passages + PER_FILE - 1) // PER_FILE):
        n = min(PER_FILE, passages - f * PER_FILE)
        drawn = vocab[rng.choice(len(vocab), size=(n, 90), p=p)]
        texts = [" ".join(row)[:500] for row in drawn]
        pieces, at = [], 0
        for i, text in enumerate(texts):
            pieces.append(_Piece(text, at, at + len(text), i // 10 + 1, None))
            at += len(text) + 1
        added = await docs.add_file(cid, f"/bench/file{f:05d}.txt", size=at, mtime=0.0, sha256=f"{f:064d}", kind="text")
        await docs.replace_passages(added.file.id, pieces)
        todo = await docs.passages_to_embed(added.file.id, limit=PER_FILE)
        vectors = rng.standard_normal((len(todo), DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        await docs.write_vectors(added.file.id, MODEL, [(pid, v.tobytes()) for (pid, _, _), v in zip(todo, vectors)])
    return time.perf_counter() - began


def search_queries(n: int, seed: int = 11, store_seed: int = 7) -> list[tuple[str, npt.NDArray[np.float32]]]:
    """`n` questions in the words of the store built with `store_seed`, each with a random vector."""
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(np.random.default_rng(store_seed))  # the same words the passages used
    p = _zipf(len(vocab))
    out = []
    for _ in range(n):
        words = [vocab[int(i)] for i in rng.choice(len(vocab), size=int(rng.integers(3, 9)), p=p)]
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append((" ".join(words) + "?", v / np.linalg.norm(v)))
    return out


# --- a folder of documents ---------------------------------------------------------------------

_NOUNS_TEXT = (
    "harbour lighthouse keeper river bridge orchard kitchen letter garden village engine library "
    "winter market council school miller bakery mountain valley forest road railway station ledger "
    "archive window storm season harvest boat net fisherman shepherd flock meadow mill wheel canal "
    "lock tower clock bell chapel square fountain lantern map compass journey traveller inn stable "
    "horse cart merchant cloth wool dye loom weaver potter clay kiln oven bread flour grain field "
    "plough farmer"
)
_NOUNS = _NOUNS_TEXT.split()
_ADJECTIVES_TEXT = (
    "old new quiet busy narrow wide early late cold warm bright dark small large northern southern "
    "careful patient steady broken restored famous local distant heavy light"
)
_ADJECTIVES = _ADJECTIVES_TEXT.split()
_VERBS_TEXT = (
    "repaired kept described measured carried opened closed visited recorded built painted crossed "
    "watched counted moved cleaned sold bought mended guarded followed"
)
_VERBS = _VERBS_TEXT.split()
_LINKS_TEXT = "near beside behind above below across along under beyond around"
_LINKS = _LINKS_TEXT.split()
_OPENERS = ("In the spring", "By evening", "Each year", "Before the war", "After the flood", "That autumn", "Later")


def _sentence(rng: random.Random, topic: str) -> str:
    noun = rng.choice((topic, topic, *_NOUNS[:40])) if rng.random() < 0.5 else rng.choice(_NOUNS)
    parts = [
        rng.choice(("The", "A", "Our", "Their")),
        rng.choice(_ADJECTIVES),
        noun,
        rng.choice(_VERBS),
        "the",
        rng.choice(_ADJECTIVES),
        rng.choice(_NOUNS),
        rng.choice(_LINKS),
        "the",
        rng.choice(_NOUNS),
    ]
    text = " ".join(parts)
    if rng.random() < 0.3:
        text = f"{rng.choice(_OPENERS)}, {text[0].lower()}{text[1:]}"
    return text + rng.choice((".", ".", ".", ";", "!"))


def _paragraph(rng: random.Random, topic: str) -> str:
    return " ".join(_sentence(rng, topic) for _ in range(rng.randint(3, 9)))


def _body(rng: random.Random, topic: str, size: int, kind: str) -> str:
    out: list[str] = []
    used = 0
    section = 0
    while used < size:
        if kind != "txt" and (section == 0 or rng.random() < 0.25):
            section += 1
            heading = f"{topic.capitalize()}: part {section}, the {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
            out.append(f"## {heading}" if kind == "md" else f"<h2>{heading}</h2>")
        text = _paragraph(rng, topic)
        out.append(text if kind != "html" else f"<p>{text}</p>")
        used += len(text) + 1
    return "\n\n".join(out)


def write_corpus(root: Path, files: int, total_bytes: int, seed: int = 25) -> int:
    """Write `files` documents of about `total_bytes` in all under `root` (in folders of 50):
    60 % Markdown, 25 % plain text, 15 % HTML; sizes vary (log-normal). Returns the bytes written."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0, 0.8) for _ in range(files)]
    scale = total_bytes / sum(weights)
    written = 0
    for i, w in enumerate(weights):
        kind = "md" if i % 20 < 12 else "txt" if i % 20 < 17 else "html"
        topic = _NOUNS[i % len(_NOUNS)]
        body = _body(rng, topic, max(200, int(w * scale)), kind)
        title = f"Notes on the {topic}, volume {i + 1}"
        if kind == "md":
            text = f"# {title}\n\n{body}\n"
        elif kind == "html":
            text = (
                f"<!doctype html>\n<html><head><title>{title}</title><style>p {{ margin: 0 }}</style>"
                f"<script>var seen = {i};</script></head>\n<body><h1>{title}</h1>\n{body}\n</body></html>\n"
            )
        else:
            text = f"{title}\n\n{body}\n"
        folder = root / f"folder{i // 50:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = text.encode()
        (folder / f"doc{i:05d}.{kind}").write_bytes(data)
        written += len(data)
    return written
