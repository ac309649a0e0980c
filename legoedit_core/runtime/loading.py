"""How the runtime loads and measures a model: ``from_pretrained`` of a diffusers / transformers class, LoRA.

Models are addressed by a ``ModelKey``: kind, hub id or local path, dtype, device, offload. The kind names a
``from_pretrained`` class (``"diffusers.FluxFillPipeline"``) or, for anything else (a vLLM engine, an ONNX session,
an embedding model), a name that the caller's own loader understands. Adapters are not part of the key: one base
serves every adapter. torch and the model libraries are imported only when a model is first loaded.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIBRARIES = ("diffusers", "transformers")


@dataclass(frozen=True)
class ModelKey:
    """Everything that makes two loaded models different (LoRA adapters do not: they are activated per call)."""

    kind: str
    source: str
    dtype: str = "float32"
    device: str = "cpu"
    cpu_offload: bool = False
    options: str = ""  # any further load argument that changes the model, as canonical JSON

    def __str__(self) -> str:
        return f"{self.kind}({self.source}, {self.dtype}, {self.device})"


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter, loaded once by ``name`` into its base and activated with ``weight`` for a call group."""

    name: str
    path: str
    weight: float = 1.0

    @classmethod
    def from_path(cls, path: str, weight: float = 1.0) -> Adapter:
        """An adapter named after its path, so that each path is loaded once into its base."""
        return cls("lora_" + hashlib.blake2b(path.encode(), digest_size=6).hexdigest(), path, weight)


Loader = Callable[[ModelKey], Any]


def from_pretrained(key: ModelKey) -> Any:
    """Load ``key`` with its class's ``from_pretrained``, then move it to its device (or offload it)."""
    library, _, class_name = key.kind.partition(".")
    if library not in LIBRARIES:
        raise ValueError(f"model kind {key.kind!r} is not a class of {' or '.join(LIBRARIES)}: pass its loader")
    cls = getattr(importlib.import_module(library), class_name)
    if not hasattr(cls, "to"):  # processors and tokenizers take no dtype and live on the CPU
        return cls.from_pretrained(key.source)
    import torch

    model = cls.from_pretrained(key.source, dtype=getattr(torch, key.dtype))
    if key.cpu_offload:
        model.enable_model_cpu_offload(device=key.device)
    else:
        model = model.to(key.device)
    if hasattr(model, "eval"):
        model.eval()
    return model


@dataclass(frozen=True)
class AdapterApi:
    """How one family of models takes LoRA adapters: load one by name, make some active, disable them all."""

    load: Callable[[Any, Adapter], None]
    activate: Callable[[Any, tuple[Adapter, ...]], None]
    disable: Callable[[Any], None]


def _diffusers_activate(pipe: Any, wanted: tuple[Adapter, ...]) -> None:
    pipe.enable_lora()
    pipe.set_adapters([a.name for a in wanted], adapter_weights=[a.weight for a in wanted])


DIFFUSERS_LORA = AdapterApi(load=lambda pipe, adapter: pipe.load_lora_weights(adapter.path, adapter_name=adapter.name),
                            activate=_diffusers_activate, disable=lambda pipe: pipe.disable_lora())


def on_model(tensors: Any, model: Any) -> dict[str, Any]:
    """A processor's outputs (a mapping of tensors) on ``model``'s device, floating ones in its dtype."""
    return {k: v.to(model.device, model.dtype) if v.is_floating_point() else v.to(model.device)
            for k, v in tensors.items() if hasattr(v, "to")}


def estimate_bytes(model: Any) -> int:
    """Bytes held by the parameters and buffers of a model, or of every module of a pipeline (0 for others)."""
    modules = list(getattr(model, "components", {}).values()) if hasattr(model, "components") else [model]
    total = 0
    for module in modules:
        for tensor in [*_tensors(module, "parameters"), *_tensors(module, "buffers")]:
            total += tensor.numel() * tensor.element_size()
    return total


def _tensors(module: Any, which: str) -> list[Any]:
    method = getattr(module, which, None)
    return list(method()) if callable(method) else []

