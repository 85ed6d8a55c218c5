"""Download figures: Hearth's resumable, verified download against huggingface-hub's own
`hf_hub_download`, both fetching the same file from a local Hub server (tests/hf_server.py).

    .venv/bin/python tests/bench/bench_downloads.py [--mb 200] [--runs 5] [--json]

Prints medians and ratios for:
- throughput on loopback (Hearth's time includes reading the file back to verify its sha256;
  hf_hub_download does not verify content);
- a download killed (SIGKILL, like a crash) halfway, then started again: bytes fetched again
  and time to finish for each;
- how long Cancel takes to return, on a throttled link and on a stalled one.

Loopback hides network latency and bandwidth; the resume and cancel figures are the ones
that carry over to a real connection.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

import contextlib

from hf_server import HubFile, HubServer

from app.core.errors import DownloadError
from app.core.models.download import Download

REPO, FILE = "bench/model-GGUF", "model.gguf"

_HEARTH = """
import sys
from pathlib import Path
from app.core.models.download import Download
Download(repo=sys.argv[1], filename=sys.argv[2], dest=Path(sys.argv[3]) / sys.argv[2], endpoint=sys.argv[4]).run()
"""
_HF = """
import sys
from huggingface_hub import hf_hub_download
hf_hub_download(sys.argv[1], sys.argv[2], local_dir=sys.argv[3], endpoint=sys.argv[4])
"""


def _child(code: str, dest: Path, endpoint: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_XET": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, REPO, FILE, str(dest), endpoint],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stderr=subprocess.DEVNULL,
    )


def _timed_full(code: str, hub: HubServer) -> float:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        proc = _child(code, Path(d), hub.endpoint)
        assert proc.wait(300) == 0
        return time.perf_counter() - t0


def _killed_then_resumed(code: str, hub: HubServer, size: int) -> tuple[int, float]:
    """SIGKILL at half the file, start again: (bytes fetched by the second run, its seconds)."""
    with tempfile.TemporaryDirectory() as d:
        hub.faults.rate_bytes_per_s = 100_000_000  # slow enough to aim the kill
        start = hub.bytes_served()
        proc = _child(code, Path(d), hub.endpoint)
        while hub.bytes_served() - start < size // 2 and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(0.2)  # let the server notice the closed socket
        hub.faults.rate_bytes_per_s = None
        before = hub.bytes_served()
        t0 = time.perf_counter()
        assert _child(code, Path(d), hub.endpoint).wait(300) == 0
        seconds = time.perf_counter() - t0
        return hub.bytes_served() - before, seconds


def _cancel_latency(hub: HubServer, *, stall: bool) -> float:
    with tempfile.TemporaryDirectory() as d:
        if stall:
            hub.faults.stall_after = 1_000_000
        else:
            hub.faults.rate_bytes_per_s = 5_000_000
        dl = Download(repo=REPO, filename=FILE, dest=Path(d) / FILE, endpoint=hub.endpoint)
        done = threading.Event()
        took: list[float] = []

        def work() -> None:
            with contextlib.suppress(DownloadError):
                dl.run()
            done.set()

        threading.Thread(target=work, daemon=True).start()
        time.sleep(0.6)
        t0 = time.perf_counter()
        dl.cancel()
        done.wait(60)
        took.append(time.perf_counter() - t0)
        hub.faults.stall_after = None
        hub.faults.rate_bytes_per_s = None
        hub.release()
        return took[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="file size in MB (default 200)")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure; medians are reported (default 5)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = args.mb * 1_000_000
    data = os.urandom(size)
    fig: dict[str, float] = {}
    with HubServer([HubFile(REPO, FILE, data)]) as hub:
        hearth_s, hf_s = [], []
        for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both
            hearth_s.append(_timed_full(_HEARTH, hub))
            hf_s.append(_timed_full(_HF, hub))
        fig["hearth_full_s"], fig["hf_full_s"] = statistics.median(hearth_s), statistics.median(hf_s)
        fig["hearth_mb_per_s"] = args.mb / fig["hearth_full_s"]
        fig["hf_mb_per_s"] = args.mb / fig["hf_full_s"]
        h_bytes, h_secs, f_bytes, f_secs = [], [], [], []
        for _ in range(args.runs):
            b, s = _killed_then_resumed(_HEARTH, hub, size)
            h_bytes.append(b)
            h_secs.append(s)
            b, s = _killed_then_resumed(_HF, hub, size)
            f_bytes.append(b)
            f_secs.append(s)
        fig["hearth_refetched_share"] = statistics.median(h_bytes) / size
        fig["hf_refetched_share"] = statistics.median(f_bytes) / size
        fig["hearth_finish_after_kill_s"] = statistics.median(h_secs)
        fig["hf_finish_after_kill_s"] = statistics.median(f_secs)
        fig["cancel_ms_throttled"] = (
            statistics.median(_cancel_latency(hub, stall=False) for _ in range(args.runs)) * 1000
        )
        fig["cancel_ms_stalled"] = statistics.median(_cancel_latency(hub, stall=True) for _ in range(args.runs)) * 1000
    if args.json:
        print(json.dumps(fig, indent=1))
        return 0
    print(f"{args.mb} MB file on loopback, medians of {args.runs} runs (Hearth | hf_hub_download)")
    print(
        f"  full download        {fig['hearth_full_s']:.2f} s | {fig['hf_full_s']:.2f} s   "
        f"({fig['hearth_mb_per_s']:.0f} | {fig['hf_mb_per_s']:.0f} MB/s; Hearth includes sha256 verification; "
        f"ratio {fig['hf_full_s'] / fig['hearth_full_s']:.2f})"
    )
    print(
        f"  killed at 50%, again: fetched {fig['hearth_refetched_share']:.0%} | {fig['hf_refetched_share']:.0%} "
        f"of the file, finished in {fig['hearth_finish_after_kill_s']:.2f} s | {fig['hf_finish_after_kill_s']:.2f} s"
    )
    print(
        f"  Cancel returns in    {fig['cancel_ms_throttled']:.0f} ms (throttled link), "
        f"{fig['cancel_ms_stalled']:.0f} ms (stalled server); hf_hub_download has no cancel"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
