"""Self-test of the llama.cpp build, in a throwaway process: load a model, read a prompt, decode.

Used by `hearth doctor`. It runs apart from any engine in use, so a build that cannot run on
this CPU (SIGSEGV in AMX kernels, SIGILL from an instruction the CPU lacks) is reported
rather than suffered: the child tells the parent each step before it takes it, and the
parent names the step during which the child died, with the signal.

The prompt has several tokens on purpose: the AMX crash (llama.cpp #20824) needed a batch of
two or more tokens; one-token evaluation went through other kernels and passed.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["SELFTEST_PROMPT", "SelfTestResult", "run_selftest"]

SELFTEST_PROMPT = "The capital of France is a city called"
_STEPS = {
    "import": "loading the llama.cpp library",
    "backends": "loading llama.cpp's CPU and GPU backends",
    "load": "loading the model",
    "prompt": "evaluating a multi-token prompt",
    "decode": "decoding tokens",
}


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    ok: bool
    step: str  # the last step reached (a key of _STEPS, or "done")
    message: str  # a sentence for a person
    exitcode: int | None = None  # the child's, when it died
    backends: dict[str, Any] | None = None  # engine.backends.BackendReport as a dict
    system_info: str = ""
    load_ms: float = 0.0
    prompt_tokens: int = 0
    prompt_ms: float = 0.0
    decode_tokens: int = 0
    decode_tokens_per_s: float = 0.0
    text: str = ""
    gpu_layers: int = 0  # layers offloaded to a GPU in the self-test (all of them, where a GPU backend works)


def _child(conn: Connection, model_path: str, n_threads: int, n_decode: int) -> None:
    try:
        _selftest(conn, model_path, n_threads, n_decode)
    except Exception as e:  # noqa: BLE001 - report any Python failure; native crashes are seen by the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))


def _selftest(conn: Connection, model_path: str, n_threads: int, n_decode: int) -> None:
    def step(name: str) -> None:
        conn.send(("step", name))

    step("import")
    import llama_cpp

    from engine.backends import load_backends
    from engine.llama_templates import disable_llama_cpp_templates

    step("backends")
    report = load_backends(llama_cpp)
    disable_llama_cpp_templates(llama_cpp)  # it would compile the file's templates unlimited
    conn.send(("backends", dataclasses.asdict(report)))
    step("load")
    # With a GPU backend, offload every layer: the self-test then proves the GPU path too.
    gpu = bool(report.gpu_devices) and bool(llama_cpp.llama_supports_gpu_offload())
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=model_path,
        n_ctx=512,
        n_batch=64,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        n_gpu_layers=-1 if gpu else 0,
        verbose=False,
    )
    load_ms = (time.perf_counter() - t0) * 1000
    tokens = llm.tokenize(SELFTEST_PROMPT.encode(), add_bos=True, special=False)
    step("prompt")
    t0 = time.perf_counter()
    llm.eval(tokens)
    prompt_ms = (time.perf_counter() - t0) * 1000
    step("decode")
    out: list[int] = []
    t0 = time.perf_counter()
    for _ in range(n_decode):
        tok = llm.sample(temp=0.0)
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
            break
        out.append(tok)
        llm.eval([tok])
    decode_s = time.perf_counter() - t0
    conn.send(
        (
            "done",
            {
                "system_info": llama_cpp.llama_print_system_info().decode(errors="replace"),
                "gpu_layers": int(llama_cpp.llama_model_n_layer(llm._model.model)) + 1 if gpu else 0,
                "load_ms": load_ms,
                "prompt_tokens": len(tokens),
                "prompt_ms": prompt_ms,
                "decode_tokens": len(out),
                "decode_tokens_per_s": len(out) / decode_s if out and decode_s > 0 else 0.0,
                "text": llm.detokenize(out).decode("utf-8", "replace"),
            },
        )
    )
    llm.close()


def _death(exitcode: int | None, step: str) -> str:
    doing = _STEPS.get(step, step)
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        native = {
            "SIGSEGV": "crashed",
            "SIGILL": "hit an instruction this CPU does not have",
            "SIGBUS": "crashed",
            "SIGABRT": "aborted",
            "SIGKILL": "was killed (out of memory?)",
        }
        what = native.get(name, "died")
        return f"llama.cpp {what} ({name}) while {doing}."
    return f"The self-test process exited (code {exitcode}) while {doing}."


def run_selftest(model_path: str, *, n_threads: int = 1, n_decode: int = 8, timeout: float = 180.0) -> SelfTestResult:
    """Run the self-test in a spawned process and report; never raises for the child's failures."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, model_path, n_threads, n_decode), name="hearth-selftest", daemon=True)
    step, backends, done = "start", None, None
    error = ""
    deadline = time.monotonic() + timeout
    proc.start()
    send.close()
    try:
        while time.monotonic() < deadline:
            if not recv.poll(min(0.5, max(0.0, deadline - time.monotonic()))):
                if not proc.is_alive() and not recv.poll(0):
                    break
                continue
            try:
                kind, value = recv.recv()
            except (EOFError, OSError):
                break
            if kind == "step":
                step = value
            elif kind == "backends":
                backends = value
            elif kind == "done":
                done = value
                break
            elif kind == "error":
                error = f"{value} (while {_STEPS.get(step, step)})."
                break
        else:
            proc.kill()
            error = f"The self-test took longer than {timeout:.0f} s while {_STEPS.get(step, step)}."
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        recv.close()
    if done is not None:
        return SelfTestResult(ok=True, step="done", message="ok", backends=backends, **done)
    if not error:
        error = _death(proc.exitcode, step)
    return SelfTestResult(ok=False, step=step, message=error, exitcode=proc.exitcode, backends=backends)
