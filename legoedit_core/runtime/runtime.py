"""The model runtime: the one owner of every loaded model in a process.

- **One cache.** Every model (diffusers pipelines, transformers models and processors, vLLM engines, ONNX sessions,
  the embedding model) is obtained here, keyed by ``ModelKey``, loaded once even when many threads ask at once.
- **One memory budget per device.** Beyond it, least-recently-used models are evicted; a model in use, or with a
  caller waiting for it, is never evicted.
- **Exclusive use.** ``call`` and ``use`` give one caller at a time a model (a pipeline's scheduler, a generate
  call: loaded models hold per-call state). Callers that wait for the same model with the same ``merge`` key are
  served together: their items are joined into one batch, the point of fanning out by brick type.
- **One base, many adapters.** LoRA adapters are not part of the key: each is loaded once by name into its base
  and activated for the call group that wants it (``set_adapters`` / ``disable_lora``).
- **Visible.** ``stats()`` gives loads, calls, merged calls, adapter switches and resident bytes per device;
  ``recording()`` collects the uses of the current thread, which the executor writes into each node's trace.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from legoedit_core.runtime.loading import (
    DIFFUSERS_LORA,
    Adapter,
    AdapterApi,
    Loader,
    ModelKey,
    estimate_bytes,
    free_accelerator_memory,
    from_pretrained,
)

BUDGET_ENV = "LEGOEDIT_MODEL_BUDGET_GB"

T = TypeVar("T")
R = TypeVar("R")
Work = Callable[[Any, list[T]], Sequence[R]]


@dataclass(frozen=True)
class ModelUse:
    """One use of a model by one caller, as the trace records it."""

    model: str
    loaded: bool  # this caller's request made the runtime load the model
    merged: int  # how many callers' requests the model call served (1: this caller alone)
    resident_bytes: int  # bytes resident on the model's device right after the call


@dataclass
class _Request:
    items: list[Any]
    group: Hashable
    done: bool = False
    outputs: list[Any] = field(default_factory=list)
    error: BaseException | None = None
    loaded: bool = False
    merged: int = 1


@dataclass
class _Slot:
    key: ModelKey
    model: Any = None
    size: int = 0
    resident: bool = False
    busy: bool = False
    users: int = 0  # callers between asking and leaving: a slot with users is never evicted
    last_used: int = 0
    loads: int = 0
    calls: int = 0
    merged_calls: int = 0
    adapters_loaded: set[str] = field(default_factory=set)
    active: tuple[Adapter, ...] | None = None
    adapter_switches: int = 0
    pending: dict[Hashable, list[_Request]] = field(default_factory=dict)


_recording: ContextVar[list[ModelUse] | None] = ContextVar("legoedit_model_uses", default=None)


class ModelRuntime:
    """Owns every loaded model of a process; see the module docstring.

    ``budgets`` maps a device to its memory budget in bytes; ``default_budget`` is that of any other device
    (None: unlimited). ``pretrained`` loads the keys of callers that pass no loader (``from_pretrained``; tests and
    benchmarks swap in random-weight or fault-injecting loaders). ``measure`` gives a loaded model's bytes.
    """

    _default: ModelRuntime | None = None
    _default_lock = threading.Lock()

    def __init__(self, budgets: dict[str, int] | None = None, default_budget: int | None = None,
                 pretrained: Loader = from_pretrained, measure: Callable[[Any], int] = estimate_bytes) -> None:
        self.budgets = dict(budgets or {})
        self.default_budget = default_budget
        self.pretrained = pretrained
        self.measure = measure
        self.evictions = 0
        self._slots: dict[ModelKey, _Slot] = {}
        self._changed = threading.Condition()
        self._clock = itertools.count(1)

    # ------------------------------------------------------------------------------------------ the process runtime

    @classmethod
    def default(cls) -> ModelRuntime:
        """The process-wide runtime; ``LEGOEDIT_MODEL_BUDGET_GB`` (when set) is the budget of every device."""
        with cls._default_lock:
            if cls._default is None:
                budget = os.environ.get(BUDGET_ENV)
                cls._default = cls(default_budget=int(float(budget) * 2**30) if budget else None)
            return cls._default

    @classmethod
    def set_default(cls, runtime: ModelRuntime | None) -> ModelRuntime | None:
        """Replace the process-wide runtime (None: a fresh one on next use); returns the previous one."""
        with cls._default_lock:
            previous, cls._default = cls._default, runtime
            return previous

    def set_budget(self, device: str, budget_bytes: int | None) -> None:
        """The memory budget of ``device`` (None: unlimited)."""
        with self._changed:
            if budget_bytes is None:
                self.budgets.pop(device, None)
            else:
                self.budgets[device] = budget_bytes

    # --------------------------------------------------------------------------------------------------- using

    def call(self, key: ModelKey, work: Work, items: Sequence[T], *, loader: Loader | None = None,
             adapters: tuple[Adapter, ...] = (), adapter_api: AdapterApi = DIFFUSERS_LORA,
             merge: Hashable | None = None) -> list[R]:
        """``work(model, items)`` with exclusive use of the model for ``key``; one output per item.

        Concurrent callers with equal ``merge`` keys (and adapters) are served by one ``work`` call over all their
        items; ``merge=None`` never merges. An exception of ``work`` is raised in every caller it served.
        """
        group: Hashable = (adapters, merge) if merge is not None else object()
        request = _Request(list(items), group)
        slot = self._enter(key)
        try:
            batch = self._wait_for_turn(slot, request)
            if batch:
                self._serve(slot, batch, work, loader, adapters, adapter_api)
            self._record(slot, request)
            if request.error is not None:
                raise request.error
            return request.outputs
        finally:
            self._leave(slot)

    @contextmanager
    def use(self, key: ModelKey, *, loader: Loader | None = None, adapters: tuple[Adapter, ...] = (),
            adapter_api: AdapterApi = DIFFUSERS_LORA) -> Iterator[Any]:
        """The model for ``key``, held exclusively for the ``with`` block."""
        request = _Request([], object())
        slot = self._enter(key)
        try:
            batch = self._wait_for_turn(slot, request)
            try:
                request.loaded = self._ready(slot, loader, adapters, adapter_api)
                slot.calls += 1
                yield slot.model
            finally:
                self._finish(slot, batch)
            self._record(slot, request)
        finally:
            self._leave(slot)

    def shared(self, key: ModelKey, *, loader: Loader | None = None) -> Any:
        """A stateless object (a processor, a tokenizer) that callers may use at once: cached and counted only."""
        with self.use(key, loader=loader) as model:
            return model

    # ---------------------------------------------------------------------------------------------- visibility

    @staticmethod
    @contextmanager
    def recording() -> Iterator[list[ModelUse]]:
        """Collect this thread's (this context's) model uses for the ``with`` block."""
        uses: list[ModelUse] = []
        token = _recording.set(uses)
        try:
            yield uses
        finally:
            _recording.reset(token)

    def loads(self, key: ModelKey | None = None) -> int:
        """How often ``key`` (or any model) was loaded."""
        with self._changed:
            if key is None:
                return sum(slot.loads for slot in self._slots.values())
            slot = self._slots.get(key)
            return slot.loads if slot is not None else 0

    def loaded(self) -> list[ModelKey]:
        """Keys of the resident models, least recently used first."""
        with self._changed:
            return [s.key for s in sorted(self._slots.values(), key=lambda s: s.last_used) if s.resident]

    def resident_bytes(self, device: str | None = None) -> int:
        with self._changed:
            return self._resident_bytes(device)

    def stats(self) -> dict[str, Any]:
        """Per model: loads, calls, merged calls, adapters and switches, bytes; resident bytes per device."""
        with self._changed:
            models = [{"model": str(s.key), "device": s.key.device, "resident": s.resident, "bytes": s.size,
                       "loads": s.loads, "calls": s.calls, "merged_calls": s.merged_calls,
                       "adapters": sorted(s.adapters_loaded), "adapter_switches": s.adapter_switches}
                      for s in self._slots.values()]
            devices = sorted({s.key.device for s in self._slots.values()})
            return {"models": models, "evictions": self.evictions,
                    "resident_bytes": {d: self._resident_bytes(d) for d in devices}}

    def clear(self) -> None:
        """Drop every model that is not in use (and free accelerator memory if torch is in use)."""
        with self._changed:
            for slot in self._slots.values():
                if not slot.busy and slot.users == 0:
                    self._drop(slot)
        free_accelerator_memory()

    # ----------------------------------------------------------------------------------------------- internals

    def _enter(self, key: ModelKey) -> _Slot:
        with self._changed:
            slot = self._slots.setdefault(key, _Slot(key))
            slot.users += 1
            return slot

    def _leave(self, slot: _Slot) -> None:
        with self._changed:
            slot.users -= 1

    def _wait_for_turn(self, slot: _Slot, request: _Request) -> list[_Request]:
        """Block until this request was served by another caller (returns []) or it is this caller's turn
        (returns the batch of requests to serve: this one and every waiting one of its group)."""
        with self._changed:
            slot.pending.setdefault(request.group, []).append(request)
            while slot.busy and not request.done:
                self._changed.wait()
            if request.done:
                return []
            slot.busy = True
            return slot.pending.pop(request.group)

    def _serve(self, slot: _Slot, batch: list[_Request], work: Work, loader: Loader | None,
               adapters: tuple[Adapter, ...], adapter_api: AdapterApi) -> None:
        try:
            batch[0].loaded = self._ready(slot, loader, adapters, adapter_api)
            items = [item for request in batch for item in request.items]
            outputs = list(work(slot.model, items))
            if len(outputs) != len(items):
                raise RuntimeError(f"{slot.key}: work returned {len(outputs)} outputs for {len(items)} items")
            start = 0
            for request in batch:
                request.outputs, start = outputs[start : start + len(request.items)], start + len(request.items)
        except BaseException as error:  # every caller served by this call sees the error
            for request in batch:
                request.error = error
        slot.calls += 1
        slot.merged_calls += len(batch) > 1
        for request in batch:
            request.merged = len(batch)
        self._finish(slot, batch)

    def _finish(self, slot: _Slot, batch: list[_Request]) -> None:
        with self._changed:
            for request in batch:
                request.done = True
            slot.busy = False
            slot.last_used = next(self._clock)
            self._changed.notify_all()

    def _ready(self, slot: _Slot, loader: Loader | None, adapters: tuple[Adapter, ...],
               adapter_api: AdapterApi) -> bool:
        """Load the slot's model if it is not resident and activate ``adapters``; True when it was loaded now."""
        loaded_now = False
        if not slot.resident:
            if slot.size:
                with self._changed:
                    self._evict_for(slot, slot.size)  # a reload: make room first, its size is known
            slot.model = (loader or self.pretrained)(slot.key)
            slot.size = self.measure(slot.model)
            loaded_now = True
            with self._changed:
                slot.resident = True
                slot.loads += 1
                self._evict_for(slot, 0)
        if (adapters or slot.adapters_loaded) and slot.active != adapters:
            self._switch_adapters(slot, adapters, adapter_api)
        return loaded_now

    def _switch_adapters(self, slot: _Slot, wanted: tuple[Adapter, ...], api: AdapterApi) -> None:
        """Load the wanted adapters the base lacks (once each, by name), then activate them or disable all."""
        new = [adapter for adapter in wanted if adapter.name not in slot.adapters_loaded]
        for adapter in new:
            api.load(slot.model, adapter)
            slot.adapters_loaded.add(adapter.name)
        if wanted:
            api.activate(slot.model, wanted)
        else:
            api.disable(slot.model)
        slot.adapter_switches += slot.active is not None
        slot.active = wanted
        if new:  # the new adapters' weights now live in the model too
            with self._changed:
                slot.size = self.measure(slot.model)
                self._evict_for(slot, 0)

    def _evict_for(self, keep: _Slot, extra: int) -> None:
        """Evict least-recently-used idle models on ``keep``'s device until ``extra`` more bytes fit the budget."""
        device = keep.key.device
        budget = self.budgets.get(device, self.default_budget)
        if budget is None:
            return
        idle = sorted((s for s in self._slots.values() if s is not keep and s.resident and s.key.device == device
                       and not s.busy and s.users == 0), key=lambda s: s.last_used)
        evicted = False
        for victim in idle:
            if self._resident_bytes(device) + extra <= budget:
                break
            self._drop(victim)
            self.evictions += 1
            evicted = True
        if evicted:
            free_accelerator_memory()

    def _drop(self, slot: _Slot) -> None:
        slot.model, slot.resident, slot.active = None, False, None
        slot.adapters_loaded = set()

    def _resident_bytes(self, device: str | None) -> int:
        return sum(s.size for s in self._slots.values() if s.resident and (device is None or s.key.device == device))

    def _record(self, slot: _Slot, request: _Request) -> None:
        uses = _recording.get()
        if uses is not None:
            uses.append(ModelUse(str(slot.key), request.loaded, request.merged, self.resident_bytes(slot.key.device)))

