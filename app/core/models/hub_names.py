"""Names on the Hugging Face Hub: `hf.co/OWNER/REPO[:QUANT|:FILE]` references, the quantization
a GGUF file's name carries, and a repo's GGUF files grouped into one entry per quantization.

Pure functions over strings and numbers: no network, no files, no Qt. app.core.models.hub_client
fetches what these read; the CLI and the window show what they return.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["HubFileEntry", "HubQuant", "HubRef", "group_quants", "parse_ref", "quant_of"]

_PREFIXES = ("hf.co/", "huggingface.co/", "https://huggingface.co/", "https://hf.co/")
_REPO_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_REF = re.compile(rf"({_REPO_PART})/({_REPO_PART})(?::([^\s:/][^\s:]{{0,199}}))?")
# llama.cpp's quantization names (engine.gguf_info.FILE_TYPES) and the usual extras, as they
# appear in file names: "…-Q4_K_M.gguf", "….q8_0.gguf", "…-IQ4_XS-00001-of-00003.gguf".
_QUANT = re.compile(
    r"(?<![A-Za-z0-9])(I?Q[1-8]_(?:K_[SML]|K|[01]|NL|XXS|XS|S|M|L)|I?Q[1-8]_K_XL|TQ[12]_0|MXFP4(?:_MOE)?|BF16|F16|F32|FP16)"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HubRef:
    """What a person named: a repo and, optionally, a quantization ("Q4_K_M") or a file name."""

    repo: str  # "OWNER/REPO"
    selector: str | None = None

    @property
    def is_file(self) -> bool:
        return self.selector is not None and self.selector.lower().endswith(".gguf")

    def __str__(self) -> str:
        return f"hf.co/{self.repo}" + (f":{self.selector}" if self.selector else "")


@dataclass(frozen=True, slots=True)
class HubFileEntry:
    """One file of a repo, as the Hub lists it with files_metadata."""

    name: str  # path in the repo, e.g. "Q4_K_M/model-Q4_K_M-00001-of-00002.gguf"
    size: int
    sha256: str | None  # the LFS sha256; None for a file not in LFS (unverifiable: never pulled)


@dataclass(frozen=True, slots=True)
class HubQuant:
    """One downloadable model in a repo: one GGUF file, or the parts of a split one, in order."""

    quant: str  # "Q4_K_M", or the file's stem when its name carries no quantization
    files: tuple[HubFileEntry, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def first(self) -> HubFileEntry:
        """The file llama.cpp is given (it finds a split model's other parts beside it)."""
        return self.files[0]

    @property
    def split(self) -> bool:
        return len(self.files) > 1


def parse_ref(text: str) -> HubRef | None:
    """`hf.co/OWNER/REPO[:QUANT|:FILE]` (also huggingface.co/...), or None for anything else."""
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            m = _REF.fullmatch(text[len(prefix) :])
            if m is None or ".." in m.group(0).split(":")[0]:
                return None
            return HubRef(f"{m.group(1)}/{m.group(2)}", m.group(3))
    return None


def quant_of(file_name: str) -> str | None:
    """The quantization a file name carries, upper-cased ("Q4_K_M"), or None."""
    base = file_name.rsplit("/", 1)[-1]
    found = _QUANT.findall(base)
    if not found:
        return None
    quant = found[-1].upper()  # the last one: "Llama-3-8B-Q8_0-Q4_K_M.gguf" is rare, the suffix wins
    return "F16" if quant == "FP16" else quant


def group_quants(files: list[HubFileEntry]) -> list[HubQuant]:
    """The GGUF files, one entry per quantization (a split model's parts as one), smallest first.

    Projector files (`mmproj-*`) are left out: they are not models one chats with. Parts of a
    split model missing from the listing make it incomplete: it is left out too.
    """
    singles: list[HubQuant] = []
    parts: dict[tuple[str, int], dict[int, HubFileEntry]] = {}
    for f in files:
        base = f.name.rsplit("/", 1)[-1]
        if not base.lower().endswith(".gguf") or base.lower().startswith("mmproj"):
            continue
        m = _SPLIT.search(f.name)
        if m is None:
            singles.append(HubQuant(quant_of(f.name) or base[: -len(".gguf")], (f,)))
            continue
        prefix = f.name[: m.start()]
        parts.setdefault((prefix, int(m.group(2))), {})[int(m.group(1))] = f
    for (prefix, count), found in parts.items():
        if sorted(found) != list(range(1, count + 1)):
            continue
        ordered = tuple(found[i] for i in range(1, count + 1))
        singles.append(HubQuant(quant_of(prefix + ".gguf") or prefix.rsplit("/", 1)[-1], ordered))
    # Two files of one quantization (two models in one repo): name them by file so both can be chosen.
    names = [q.quant for q in singles]
    out = [q if names.count(q.quant) == 1 else HubQuant(q.first.name.rsplit("/", 1)[-1], q.files) for q in singles]
    return sorted(out, key=lambda q: (q.size, q.quant))
