"""Hostile and broken model files: each ends in a clear error naming the file, never a crash.

The corpus (tests/gguf_corpus.py) mutates the real bundled model's header, metadata and
tensor table: truncations, wrong magic and versions, absurd counts and lengths, unknown
types, impossible shapes and offsets, and the values that made llama.cpp abort before the
pre-check existed. Most cases run the pre-check in this process; a subset goes through the
real engine process, including files that pass the check and reach llama.cpp, and a load
during which the engine process dies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import threading
import time
from pathlib import Path

import pytest
from gguf_corpus import STRING, U32, Case, Layout, build_corpus, enc_kv, enc_str, layout_of, rebuild, write_model

from app.core.paths import default_model_path
from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, LoadModel, Sampling
from engine.errors import ModelLoadError
from engine.events import Delta, Failed, Final, ModelLoading
from engine.gguf_check import check_gguf
from engine.local import LocalModel
from engine.template_choice import CHATML_TEMPLATE

_BUNDLED = default_model_path()
LAYOUT = layout_of(_BUNDLED) if _BUNDLED.is_file() else None
CORPUS = build_corpus(LAYOUT) if LAYOUT is not None else []
# The template sandbox: this one tries to reach Python's object graph the moment it renders.
ESCAPE = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
# This one behaves for a single message and escapes once the conversation has two.
LATE_ESCAPE = "{% if messages|length > 1 %}{{ cycler.__init__.__globals__ }}{% endif %}" + CHATML_TEMPLATE


@pytest.fixture(scope="module")
def layout(model_path: Path) -> Layout:
    assert LAYOUT is not None and LAYOUT.path == model_path
    return LAYOUT


def _write(case: Case, lay: Layout, folder: Path, stem: str) -> Path:
    head, total = case.make(lay)
    return write_model(folder / f"{stem}.gguf", head, total)


def _with_template(lay: Layout, source: str) -> tuple[bytes, int]:
    return rebuild(lay, replace={"tokenizer.chat_template": enc_kv("tokenizer.chat_template", STRING, enc_str(source))})


def test_the_corpus_is_large_and_deterministic(layout: Layout) -> None:
    assert len(CORPUS) >= 100
    assert [c.id for c in build_corpus(layout)] == [c.id for c in CORPUS]
    assert len({c.id for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_a_damaged_file_gets_a_clear_error_naming_it(case: Case, layout: Layout, tmp_path: Path) -> None:
    path = _write(case, layout, tmp_path, "suspect-model")
    if case.expect is None:  # random damage that may leave a valid file
        try:
            check_gguf(path)
        except ModelLoadError as e:
            message = e.message
        else:
            return
        assert "suspect-model.gguf" in message
        return
    with pytest.raises(ModelLoadError) as err:
        check_gguf(path)
    assert err.value.code in case.expect, err.value.message
    assert "suspect-model.gguf" in err.value.message


def test_the_bundled_model_passes_quickly_without_reading_weights(model_path: Path) -> None:
    check_gguf(model_path)  # warm the page cache
    best = min(_cpu_time(lambda: check_gguf(model_path)) for _ in range(5))  # CPU time: deaf to neighbours
    summary = check_gguf(model_path)
    assert summary.architecture == "llama" and summary.n_tensors == 272
    assert summary.size_bytes == 98_362_432 and summary.data_offset == 1_785_664
    assert summary.chat_template and "<|im_start|>" in summary.chat_template
    assert best < 0.1, f"{best * 1000:.0f} ms"


def _cpu_time(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


@pytest.mark.parametrize("kind", ["empty", "directory", "missing", "text"])
def test_what_is_not_a_model_file_at_all(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("GGUF is a file format; this is a note about it.\n")
    with pytest.raises(ModelLoadError) as err:
        check_gguf(path)
    assert (
        err.value.code
        == {"empty": "not_gguf", "directory": "not_a_file", "missing": "not_found", "text": "unsupported_version"}[kind]
    )
    assert "model.gguf" in err.value.message


# -- chat templates ------------------------------------------------------------------------


def test_a_template_that_escapes_at_once_is_refused_before_llama_cpp(layout: Layout, tmp_path: Path) -> None:
    path = write_model(tmp_path / "sneaky.gguf", *_with_template(layout, ESCAPE))
    with pytest.raises(ModelLoadError) as err:
        LocalModel(LoadModel(str(path)))
    assert err.value.code == "unsafe_template"
    assert "sneaky.gguf" in err.value.message and "sandbox" in err.value.message


def test_a_template_that_does_not_compile_is_refused(layout: Layout, tmp_path: Path) -> None:
    path = write_model(tmp_path / "broken-template.gguf", *_with_template(layout, "{% for m in messages %}{{ m"))
    with pytest.raises(ModelLoadError) as err:
        LocalModel(LoadModel(str(path)))
    assert err.value.code == "bad_template" and "broken-template.gguf" in err.value.message


def test_a_template_that_escapes_later_fails_that_reply_only(layout: Layout, tmp_path: Path) -> None:
    path = write_model(tmp_path / "late-escape.gguf", *_with_template(layout, LATE_ESCAPE), source=layout)

    async def main():
        engine = AsyncEngine()
        try:
            await engine.load(LoadModel(str(path)))
            first = await _collect(engine.generate(Generate(1, _user("Hi"), Sampling.greedy(4))))
            two = (*_user("Hi"), ChatMessage("assistant", "Hello!"), *_user("And now?"))
            second = await _collect(engine.generate(Generate(2, two, Sampling.greedy(4))))
            third = await _collect(engine.generate(Generate(3, _user("Hi again"), Sampling.greedy(4))))
            return first, second, third
        finally:
            engine.close()

    first, second, third = asyncio.run(main())
    assert isinstance(first[-1], Final) and isinstance(third[-1], Final)
    failed = second[-1]
    assert isinstance(failed, Failed) and failed.code == "template_error"
    assert "late-escape.gguf" in failed.message and "sandbox" in failed.message


@pytest.mark.parametrize("poison", ["nan", "inf"], ids=["all-nan", "a-plus-infinity"])
@pytest.mark.parametrize("greedy", [False, True], ids=["chat-sampling", "greedy"])
def test_logits_that_go_bad_mid_answer_end_it_as_failed_with_its_text_kept(
    model_path: Path, poison: str, greedy: bool
) -> None:
    """A model whose numbers break down after a few tokens (a damaged tensor reached late): the
    sampler refuses to pick, and the answer fails saying why, after the text it already gave."""
    import numpy as np

    model = LocalModel(LoadModel(str(model_path), n_ctx=512, n_threads=1))
    views = 0
    real_view = model._logits_view

    def view() -> np.ndarray:
        nonlocal views
        views += 1
        logits = real_view()
        if views <= 6:  # the prompt's check, then five good tokens
            return logits
        bad = logits.copy()
        if poison == "nan":
            bad[:] = np.nan
        else:
            bad[int(np.argmax(bad))] = np.inf
        return bad

    model._logits_view = view  # type: ignore[method-assign]
    sampling = Sampling.greedy(32) if greedy else Sampling(max_tokens=32, ignore_eos=True, seed=3)
    events: list[object] = []
    try:
        model.generate(
            Generate(1, _user("Tell me a story."), sampling), threading.Event(), events.append, time.perf_counter()
        )
    finally:
        model.close()
    end = events[-1]
    assert isinstance(end, Failed) and end.code == "bad_model", end
    assert "invalid numbers" in end.message and model_path.name in end.message
    assert sum(e.tokens for e in events if isinstance(e, Delta)) == 5


# -- through the engine process -------------------------------------------------------------


def _user(text: str) -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", text),)


async def _collect(stream) -> list[object]:
    return [ev async for ev in stream]


def _passes_check(case: Case, lay: Layout, folder: Path) -> bool:
    path = _write(case, lay, folder, "probe")
    try:
        check_gguf(path)
        return True
    except ModelLoadError:
        return False
    finally:
        path.unlink()


def _by_id(*ids: str) -> list[Case]:
    found = {c.id: c for c in CORPUS}
    return [found[i] for i in ids]


def _engine_cases(lay: Layout, folder: Path) -> list[tuple[str, Case]]:
    """(file stem, case): files that reach llama.cpp, then files the check rejects."""

    def u32_at(key: str, value: int) -> Case:
        def make(lay: Layout) -> tuple[bytes, int]:
            head = bytearray(lay.head)
            head[lay.kvs[key].value_at : lay.kvs[key].value_at + 4] = struct.pack("<I", value)
            return bytes(head), lay.size

        return Case(f"{key}={value}", make, None)

    def renamed_tensor(lay: Layout) -> tuple[bytes, int]:
        head = bytearray(lay.head)
        head[lay.tensors[5].start + 8] ^= 0x20
        return bytes(head), lay.size

    reaching = [
        Case("sparse-copy", lambda lay: (lay.head, lay.size), None),
        Case(
            "alignment-64",
            lambda lay: rebuild(lay, add=(enc_kv("general.alignment", U32, struct.pack("<I", 64)),), alignment=64),
            None,
        ),
        Case(
            "tensor-count-minus-one",
            lambda lay: (lay.head[:8] + struct.pack("<Q", len(lay.tensors) - 1) + lay.head[16:], lay.size),
            None,
        ),
        Case(
            "unknown-architecture",
            lambda lay: rebuild(
                lay, replace={"general.architecture": enc_kv("general.architecture", STRING, enc_str("hostile"))}
            ),
            None,
        ),
        Case("tensor-renamed", renamed_tensor, None),
        u32_at("llama.attention.head_count", 0),
        u32_at("llama.embedding_length", 7),
    ]
    flips = [c for c in CORPUS if c.id.startswith("bit-flip") and _passes_check(c, lay, folder)][:3]
    rejected = _by_id(
        "truncated-in-weights-0.5",
        "magic-b'GGML'",
        "tensor-count-plus-one",
        "block-count-0",
        "vocabulary-repeats-a-token",
        "rms-epsilon-nan",
        "no-tokenizer",
    )
    return [(f"engine-{i:02d}", c) for i, c in enumerate([*reaching, *flips, *rejected])]


def test_the_engine_survives_a_corpus_of_hostile_files(layout: Layout, model_path: Path, tmp_path: Path) -> None:
    cases = _engine_cases(layout, tmp_path)

    async def main():
        engine = AsyncEngine()
        outcomes = []
        try:
            for stem, case in cases:
                path = _write(case, layout, tmp_path, stem)
                pid = engine.pid
                try:
                    info = await engine.load(LoadModel(str(path), n_ctx=512))
                    outcomes.append((stem, case.id, "loaded", info.size_bytes, pid, engine.pid))
                except ModelLoadError as e:
                    outcomes.append((stem, case.id, e.code, e.message, pid, engine.pid))
                path.unlink()
            await engine.load(LoadModel(str(model_path)))
            after = await _collect(engine.generate(Generate(1, _user("Name a colour."), Sampling.greedy(6))))
            return outcomes, after
        finally:
            engine.close()

    outcomes, after = asyncio.run(main())
    by_id = {o[1]: o for o in outcomes}
    for stem, case_id, code, detail, pid_before, pid_after in outcomes:
        if code == "loaded":
            continue
        assert f"{stem}.gguf" in detail, (case_id, code, detail)
        assert code != "engine_crashed", (case_id, detail)  # nothing here reaches a native crash any more
        if pid_before is not None:
            assert pid_after == pid_before, (case_id, detail)
    assert by_id["sparse-copy"][2] == "loaded" and by_id["alignment-64"][2] == "loaded"
    for case_id in ("tensor-count-minus-one", "unknown-architecture", "tensor-renamed"):
        assert by_id[case_id][2] == "load_failed", by_id[case_id]
    for case_id in ("block-count-0", "vocabulary-repeats-a-token", "rms-epsilon-nan"):
        assert by_id[case_id][2] == "corrupt_metadata", by_id[case_id]
    assert by_id["no-tokenizer"][2] == "no_tokenizer"
    assert isinstance(after[-1], Final) and any(isinstance(e, Delta) for e in after)


def test_an_engine_crash_while_loading_names_the_file(layout: Layout, model_path: Path, tmp_path: Path) -> None:
    """llama.cpp aborting inside a load (simulated: SIGABRT as the load starts) is survived."""
    path = write_model(tmp_path / "crashes-llama.gguf", layout.head, layout.size)

    async def main():
        engine = AsyncEngine()

        def abort_on_load(event: object) -> None:
            if isinstance(event, ModelLoading) and event.path == str(path) and engine.pid:
                os.kill(engine.pid, signal.SIGABRT)

        engine.add_listener(abort_on_load)
        try:
            await engine.load(LoadModel(str(model_path)))  # the engine process is up, llama.cpp imported
            crashed_pid = engine.pid
            with pytest.raises(ModelLoadError) as err:
                await engine.load(LoadModel(str(path)))
            failed = engine.model_error
            await engine.load(LoadModel(str(model_path)))
            after = await _collect(engine.generate(Generate(1, _user("Hi"), Sampling.greedy(4))))
            return err.value, failed, crashed_pid, engine.pid, after
        finally:
            engine.close()

    error, failed, crashed_pid, new_pid, after = asyncio.run(main())
    assert error.code == "engine_crashed"
    assert "crashes-llama.gguf" in error.message and "llama.cpp crashed" in error.message
    assert failed is not None and failed.path == str(path)
    assert new_pid != crashed_pid and isinstance(after[-1], Final)
