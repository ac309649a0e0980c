"""The model runtime: the one owner of every loaded model in a process.

- **One cache.** Every model (diffusers pipelines, transformers models and processors, vLLM engines, ONNX sessions,
  the embedding model) is obtained here, keyed by ``ModelKey``, loaded once even when many threads ask at once.
- **Memory admitted before loading.** A model is sized before it loads (``sizing.size_before_load``); least
  recently used idle models are evicted (closed, collected, the CUDA cache emptied) until it fits both the device's
  budget and what the device really has free less a reserve for inference. A model in use, or with a caller
  waiting for it, is never evicted: a load waits for it to be released, and raises ``ModelDoesNotFit`` when
  nothing it could wait for would make room.
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

from legoedit_core.faults import Fault
from legoedit_core.runtime.loading import (
    DIFFUSERS_LORA,
    Adapter,
    AdapterApi,
    Loader,
    ModelKey,
    estimate_bytes,
    from_pretrained,
)
from legoedit_core.runtime.memory import DeviceMemory, TorchDeviceMemory, close_model
from legoedit_core.runtime.sizing import size_before_load

BUDGET_ENV = "LEGOEDIT_MODEL_BUDGET_GB"
# Kept free on a CUDA device for activations (ComfyUI keeps about 1 GiB of "inference memory" the same way).
DEFAULT_RESERVES = {"cuda": 2 * 2**30}
Estimate = Callable[[ModelKey, int | None], int | None]


class ModelDoesNotFit(Fault):
    """A model cannot be admitted on its device: even with every evictable model gone it exceeds the budget or
    the device's free memory less the reserve. A fault of the machinery that a retry on the same device cannot
    mend (the task fails at once, without retries), not an out-of-memory of a batch: a smaller batch would not make
    the model fit."""

    retryable = False


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
    size: int = 0  # bytes counted against the device while resident (measured, else the size admitted)
    admitted: int | None = None  # bytes the last load was admitted for, sized before it loaded (None: unknown)
    loading: int = 0  # bytes admitted for a load in progress: held for it until the model is resident
    resident: bool = False
    busy: bool = False
    holder: int | None = None  # the thread using the model while busy
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

    ``budgets`` maps a device (``cuda:1``, or a type: ``cuda``) to its memory budget in bytes; ``default_budget`` is
    that of any other device (None: unlimited). ``reserves`` is the memory kept free per device beside the models.
    ``pretrained`` loads the keys of callers that pass no loader (``from_pretrained``; tests and benchmarks swap in
    random-weight or fault-injecting loaders). ``measure`` gives a loaded model's bytes (0: not a torch model, the
    admitted size counts), ``estimate`` its bytes before loading, ``memory`` what the devices really have free.
    """

    _default: ModelRuntime | None = None
    _default_lock = threading.Lock()

    def __init__(self, budgets: dict[str, int] | None = None, default_budget: int | None = None,
                 pretrained: Loader = from_pretrained, measure: Callable[[Any], int] = estimate_bytes,
                 estimate: Estimate = size_before_load, memory: DeviceMemory | None = None,
                 reserves: dict[str, int] | None = None) -> None:
        self.budgets = dict(budgets or {})
        self.default_budget = default_budget
        self.reserves = dict(DEFAULT_RESERVES if reserves is None else reserves)
        self.pretrained = pretrained
        self.measure = measure
        self.estimate = estimate
        self.memory: DeviceMemory = memory or TorchDeviceMemory()
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

    def set_reserve(self, device: str, reserve_bytes: int) -> None:
        """Bytes kept free on ``device`` (or on every device of a type: ``cuda``) beside the loaded models."""
        with self._changed:
            self.reserves[device] = reserve_bytes

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
                       "admitted_bytes": s.admitted, "loads": s.loads, "calls": s.calls, "merged_calls": s.merged_calls,
                       "adapters": sorted(s.adapters_loaded), "adapter_switches": s.adapter_switches}
                      for s in self._slots.values()]
            devices = sorted({s.key.device for s in self._slots.values()})
            return {"models": models, "evictions": self.evictions,
                    "resident_bytes": {d: self._resident_bytes(d) for d in devices}}

    def clear(self) -> None:
        """Drop every model that is not in use and give its memory back to the device."""
        with self._changed:
            for slot in self._slots.values():
                if slot.resident and not slot.busy and slot.users == 0:
                    self._drop(slot)

    # ----------------------------------------------------------------------------------------------- internals

    def _enter(self, key: ModelKey) -> _Slot:
        with self._changed:
            slot = self._slots.setdefault(key, _Slot(key))
            slot.users += 1
            return slot

    def _leave(self, slot: _Slot) -> None:
        with self._changed:
            slot.users -= 1
            self._changed.notify_all()  # a load waiting for room may evict this model now

    def _wait_for_turn(self, slot: _Slot, request: _Request) -> list[_Request]:
        """Block until this request was served by another caller (returns []) or it is this caller's turn
        (returns the batch of requests to serve: this one and every waiting one of its group)."""
        with self._changed:
            slot.pending.setdefault(request.group, []).append(request)
            while slot.busy and not request.done:
                self._changed.wait()
            if request.done:
                return []
            slot.busy, slot.holder = True, threading.get_ident()
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
            slot.busy, slot.holder = False, None
            slot.last_used = next(self._clock)
            self._changed.notify_all()

    def _ready(self, slot: _Slot, loader: Loader | None, adapters: tuple[Adapter, ...],
               adapter_api: AdapterApi) -> bool:
        """Load the slot's model if it is not resident and activate ``adapters``; True when it was loaded now."""
        loaded_now = False
        if not slot.resident:
            device = slot.key.device
            # A reload needs what the model measured last time; a first load what its files say it will hold.
            need = slot.size or self.estimate(slot.key, self.memory.total(device))
            with self._changed:
                self._make_room(slot, need or 0, admitting=True)
                slot.loading = need or 0  # loads of other threads count it from now on
            try:
                slot.model = (loader or self.pretrained)(slot.key)
            finally:
                with self._changed:
                    slot.loading = 0
                    self._changed.notify_all()
            loaded_now = True
            with self._changed:
                slot.admitted = need
                slot.size = self.measure(slot.model) or need or 0
                slot.resident = True
                slot.loads += 1
                self._make_room(slot, 0, admitting=False)  # it measured more than it was admitted for
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
                slot.size = self.measure(slot.model) or slot.size
                self._make_room(slot, 0, admitting=False)

    def _make_room(self, keep: _Slot, need: int, *, admitting: bool) -> None:
        """Evict least recently used idle models on ``keep``'s device until ``need`` more bytes fit its budget and
        its free memory less the reserve. Admitting a load, wait for models in use by other threads to be
        released, and raise ``ModelDoesNotFit`` when nothing left could make room; after a load (``admitting``
        False) evict what is idle and stop. Called with the lock held."""
        device = keep.key.device
        while (room := self._room(device)) is not None and need > room:
            others = [s for s in self._slots.values() if s is not keep and s.key.device == device]
            idle = [s for s in others if s.resident and not s.busy and s.users == 0]
            if idle:
                self._drop(min(idle, key=lambda s: s.last_used))
                self.evictions += 1
                continue
            if not admitting:
                return
            me = threading.get_ident()
            if not any((s.resident or s.loading) and (s.busy or s.users) and s.holder != me for s in others):
                raise ModelDoesNotFit(f"{keep.key} needs {need / 2**30:.2f} GiB on {device}: "
                                      f"{max(room, 0) / 2**30:.2f} GiB is all there is to give it, with every "
                                      "other model there evicted or held by this thread")
            self._changed.wait()  # a model in use elsewhere: once released, it may be evicted

    def _room(self, device: str) -> int | None:
        """Bytes a new model may take on ``device`` now (None: no limit): the tighter of the budget less what is
        resident, and the free memory less the reserve, both less the loads in progress."""
        in_flight = sum(s.loading for s in self._slots.values() if s.key.device == device)
        budget = self._limit(self.budgets, device, self.default_budget)
        free = self.memory.free(device)
        rooms = [budget - self._resident_bytes(device)] if budget is not None else []
        rooms += [free - (self._limit(self.reserves, device, 0) or 0)] if free is not None else []
        return min(rooms) - in_flight if rooms else None

    @staticmethod
    def _limit(table: dict[str, int], device: str, default: int | None) -> int | None:
        """The entry of ``device`` (``cuda:1``), else of its type (``cuda``), else ``default``."""
        return table.get(device, table.get(device.partition(":")[0], default))

    def _drop(self, slot: _Slot) -> None:
        """Evict a model and really free it: its own release hook, then garbage collection and the device cache."""
        model = slot.model
        slot.model, slot.resident, slot.active = None, False, None
        slot.adapters_loaded = set()
        close_model(model)
        del model
        self.memory.release(slot.key.device)

    def _resident_bytes(self, device: str | None) -> int:
        return sum(s.size for s in self._slots.values() if s.resident and (device is None or s.key.device == device))

    def _record(self, slot: _Slot, request: _Request) -> None:
        uses = _recording.get()
        if uses is not None:
            uses.append(ModelUse(str(slot.key), request.loaded, request.merged, self.resident_bytes(slot.key.device)))

