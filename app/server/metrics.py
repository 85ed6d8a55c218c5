"""What `hearth serve` measured: one record per request, with the names the window uses
(command latency, TTFT, tokens/s, completion state, retrieval latency), one per embeddings
request (inputs, tokens, latency), and the summary GET /metrics returns.

Kept in memory (the last MAX_RECORDS requests): the server's figures are for watching it run,
not product state. Must not: block, or write to the store.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["EmbeddingRecord", "Metrics", "RequestRecord"]

MAX_RECORDS = 10_000


@dataclass(frozen=True, slots=True)
class RequestRecord:
    model: str  # the id the client asked for
    stream: bool
    state: str  # completed | cancelled | failed | rejected
    command_latency_ms: float | None = None  # request received -> generation command sent
    ttft_ms: float | None = None  # request received -> first text byte written
    tokens_per_s: float | None = None
    completion_tokens: int | None = None
    total_ms: float | None = None
    queued_ms: float | None = None  # waiting for the model (one local generation at a time)
    finalization_lag_ms: float | None = None  # last token to durable save (saved conversations only)
    reason: str | None = None  # why it was cancelled, failed or rejected
    retrieval_ms: float | None = None  # finding passages (requests that name collections)


@dataclass(frozen=True, slots=True)
class EmbeddingRecord:
    state: str  # completed | refused (4xx) | failed (5xx) | cancelled
    inputs: int = 0
    tokens: int = 0
    total_ms: float | None = None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)


class Metrics:
    def __init__(self) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)
        self.total = 0
        self._embeddings: deque[EmbeddingRecord] = deque(maxlen=MAX_RECORDS)
        self.embedding_requests = 0

    def record(self, record: RequestRecord) -> None:
        self._records.append(record)
        self.total += 1

    def record_embedding(self, record: EmbeddingRecord) -> None:
        self._embeddings.append(record)
        self.embedding_requests += 1

    def recent(self) -> list[RequestRecord]:
        return list(self._records)

    def median_total_ms(self) -> float | None:
        done = [r.total_ms for r in self._records if r.total_ms and r.state == "completed"][-20:]
        return statistics.median(done) if done else None

    def summary(self, **extra: Any) -> dict[str, Any]:
        records = list(self._records)
        ttft = [r.ttft_ms for r in records if r.ttft_ms is not None]
        tps = [r.tokens_per_s for r in records if r.tokens_per_s]
        streams = [r for r in records if r.stream and r.state != "rejected"]
        retrieval = [r.retrieval_ms for r in records if r.retrieval_ms is not None]
        embedded = list(self._embeddings)
        latency = [r.total_ms for r in embedded if r.total_ms is not None and r.state == "completed"]
        return {
            "requests": self.total,
            "by_state": dict(Counter(r.state for r in records)),
            "ttft_ms": {"p50": _percentile(ttft, 50), "p95": _percentile(ttft, 95)},
            "tokens_per_s": {"p50": _percentile(tps, 50)},
            "stream_completion_rate": round(sum(r.state == "completed" for r in streams) / len(streams), 4)
            if streams
            else None,
            "retrieval_ms": {
                "count": len(retrieval),
                "p50": _percentile(retrieval, 50),
                "p95": _percentile(retrieval, 95),
            },
            "embeddings": {
                "requests": self.embedding_requests,
                "by_state": dict(Counter(r.state for r in embedded)),
                "inputs": sum(r.inputs for r in embedded),
                "tokens": sum(r.tokens for r in embedded),
                "latency_ms": {"p50": _percentile(latency, 50), "p95": _percentile(latency, 95)},
            },
            **extra,
            "last": asdict(records[-1]) if records else None,
        }
