"""What every model backend shares: settings resolution, the missing()/describe_needs() checks, model access.

A brick's settings may hold shared keys (``steps = 20``) and one sub-table per backend
(``[bricks.INPAINT.flux-fill] model = "..."``); a backend sees its own sub-table over the shared keys over its
``defaults``. Model ids and paths are only ever read from these settings.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from legoedit_core.bricks.spec import Backend
from legoedit_core.runtime import Adapter, ModelKey, ModelRuntime
from legoedit_core.runtime.runtime import Work


class ModelBackend(Backend):
    """A backend that runs diffusers / transformers models owned by the model runtime.

    Subclasses declare ``packages`` (import names needed), ``sources`` (settings key -> what model it names),
    ``defaults`` (steps, guidance, ...) and ``cuda_dtype``, the dtype of the family on an accelerator when the
    settings leave ``dtype`` unset or ``auto`` (on the CPU: float32, the one dtype every CPU kernel has).
    """

    resource = "gpu"
    packages: ClassVar[tuple[str, ...]] = ("torch", "diffusers")
    sources: ClassVar[dict[str, str]] = {"model": "a diffusers pipeline"}
    defaults: ClassVar[dict[str, Any]] = {}
    cuda_dtype: ClassVar[str] = "bfloat16"
    setting_keys = frozenset({"dtype", "device", "cpu_offload", "download", "lora", "adapter_weight", "max_batch",
                              "generator_device"})

    @classmethod
    def known_settings(cls) -> frozenset[str]:
        return cls.setting_keys | set(cls.defaults) | set(cls.sources)

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.options = self.resolve(self.settings)
        self.runtime: ModelRuntime | None = None  # None: the process-wide runtime

    @classmethod
    def resolve(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Defaults, then the brick's shared keys, then this backend's own sub-table; an ``auto`` dtype follows
        the device."""
        shared = {k: v for k, v in settings.items() if not isinstance(v, dict)}
        own = settings.get(cls.name, {})
        options = {"dtype": "auto", "device": "cpu", "cpu_offload": False, "download": False,
                   **cls.defaults, **shared, **(own if isinstance(own, dict) else {})}
        if options["dtype"] == "auto":
            options["dtype"] = "float32" if options["device"] == "cpu" else cls.cuda_dtype
        return options

    @classmethod
    def missing(cls, settings: dict[str, Any]) -> str | None:
        absent = [p for p in cls.packages if importlib.util.find_spec(p) is None]
        if absent:
            return f"needs the Python package(s) {', '.join(absent)}: install them (the 'models' extra has the rest)"
        options = cls.resolve(settings)
        for key, what in cls.sources.items():
            where = f"bricks.{cls.brick}.{cls.name}.{key}"
            source = options.get(key)
            if not source:
                return f"needs {what}: set {where} to a hub id or a local path"
            problem = _source_problem(str(source), options)
            if problem:
                return f"needs {what} ({where} = {source!r}): {problem}"
        device = str(options["device"])
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return f"needs device {device!r}, but torch sees no CUDA device"
        return None

    def describe_needs(self) -> str:
        return "; ".join(f"{self.options.get(key)} ({_where(str(self.options.get(key)))})" for key in self.sources)

    def model_runtime(self) -> ModelRuntime:
        return self.runtime or ModelRuntime.default()

    def model_key(self, kind: str, key: str = "model") -> ModelKey:
        """The model named by the settings ``key``, as class ``kind`` (e.g. ``diffusers.FluxFillPipeline``)."""
        options = self.options
        return ModelKey(kind, str(options[key]), str(options["dtype"]), str(options["device"]),
                        bool(options["cpu_offload"]))

    def adapters(self) -> tuple[Adapter, ...]:
        """This brick's LoRA adapter (the ``lora`` setting), named after its path so each loads once per base."""
        path = self.options.get("lora")
        return (Adapter.from_path(str(path), float(self.options.get("adapter_weight", 1.0))),) if path else ()

    def merge_key(self) -> Hashable:
        """Calls of equal merge keys may share one model call: same backend, same settings."""
        return (type(self).__qualname__, json.dumps(self.options, sort_keys=True, default=str))

    def run_model(self, kind: str, work: Work, items: Sequence[Any]) -> list[Any]:
        """``work(model, items)`` with exclusive use of the model, this brick's adapters active, merged with the
        waiting calls of other threads to the same backend."""
        return self.model_runtime().call(self.model_key(kind), work, items, adapters=self.adapters(),
                                         merge=self.merge_key())

    @contextmanager
    def use(self, kind: str, key: str = "model") -> Iterator[Any]:
        """Exclusive use of the model named by the settings ``key`` for the ``with`` block."""
        with self.model_runtime().use(self.model_key(kind, key)) as model:
            yield model

    def shared(self, kind: str, key: str = "model") -> Any:
        """A stateless helper (processor, tokenizer) named by the settings ``key``, shared by every caller."""
        return self.model_runtime().shared(self.model_key(kind, key))


def _looks_local(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or os.path.exists(source)


def _where(source: str) -> str:
    if _looks_local(source):
        return "local path"
    from huggingface_hub import constants

    return f"hub id, cache {constants.HF_HUB_CACHE}"


def _source_problem(source: str, options: dict[str, Any]) -> str | None:
    """None when the weights can be loaded: a local directory, or a hub id cached (or downloads allowed)."""
    if _looks_local(source):
        return None if Path(source).expanduser().exists() else "this local path does not exist"
    if options.get("download"):
        return None
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(source, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):
        return (f"not in the hub cache {constants.HF_HUB_CACHE}; download it first "
                f"(hf download {source}) or set download = true")
    return None
