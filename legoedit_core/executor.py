"""The Executor: runs validated workflows over bricks.

``Executor.run`` edits one item. ``Executor.run_many`` edits many in *waves*: every node that is ready across
all items is grouped by (brick, backend), each group is one batched backend call, and then the next wave starts.
The wave machinery is public (``Executor.start`` -> ``WaveRun``, ``Executor.run_group``) so that an orchestrator
such as the Prefect flow can run each group as its own task, possibly on another worker. Everything that touches
pixels (node cache lookups and stores, output checks) happens in ``run_group``; ``WaveRun`` only moves references,
so the thread that drives the waves stays light. With a cache, give items their content ``keys`` (``input_keys``)
where the pixels are decoded, or ``WaveRun`` hashes them itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from legoedit_core.bricks.spec import Backend, BrickError, BrickSpec, item_error
from legoedit_core.bricks.toolset import Toolset
from legoedit_core.cache import NodeCache, array_key, call_key
from legoedit_core.faults import Fault, is_fault, run_fitting_memory
from legoedit_core.runtime import ModelRuntime, ModelUse
from legoedit_core.types import PortType, ValueTypeError, check_value, size_of
from legoedit_core.workflow import (
    INPUT,
    Constraint,
    Node,
    Workflow,
    WorkflowLimits,
    dependencies,
    literal_value,
    needed_nodes,
    parse_ref,
    validate,
)

Status = Literal["ok", "invalid_plan", "failed"]


def node_seed(item_seed: int, node_id: str) -> int:
    """The seed a node gets: a stable hash of the item seed and the node id (63 bits)."""
    digest = hashlib.blake2b(f"{item_seed}/{node_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


@dataclass
class EditItem:
    """One image to edit with one workflow. ``mask`` is the user's optional mask (``@input.mask``)."""

    id: str
    image: np.ndarray
    workflow: Workflow
    mask: np.ndarray | None = None
    seed: int = 0
    keys: dict[str, str] | None = None  # content keys of image and mask (``input_keys``), for the node cache


def input_keys(image: np.ndarray, mask: np.ndarray | None = None) -> dict[str, str]:
    """The node cache's content keys of an item's inputs (``@input.image``, ``@input.mask``)."""
    return {"image": array_key(image)} | ({"mask": array_key(mask)} if mask is not None else {})


@dataclass
class NodeTrace:
    node: str
    tool: str
    backend: str | None
    seconds: float
    cache_hit: bool = False
    error: str | None = None
    wave: int = 0
    batch_size: int = 1
    models: list[dict[str, Any]] = field(default_factory=list)  # the group's ModelUses: model, loaded, merged...
    note: str | None = None  # the planner's note on the node, e.g. an approximation it made
    fallback: str | None = None  # why this node ran on a CPU backend instead of the run's pinned GPU backend


@dataclass
class EditResult:
    """What happened to one item: ``image`` is set exactly when ``status`` is ``ok``.

    ``images`` holds every output of a workflow that makes several (``image`` is the first); else just ``image``.
    """

    id: str
    status: Status
    image: np.ndarray | None = None
    error: str | None = None
    failed_node: str | None = None
    trace: list[NodeTrace] = field(default_factory=list)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: list[np.ndarray] = field(default_factory=list)

    def masks(self) -> list[np.ndarray]:
        """Every mask a node of this run produced (for judging what the plan meant to change)."""
        return [v for outputs in self.values.values() for v in outputs.values() if _is_mask(v)]


def _is_mask(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 2


def _is_image(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.ndim == 3


@dataclass
class BrickCall:
    """One node of one item, with its inputs resolved to values."""

    item: int
    node: str
    inputs: dict[str, Any]
    seed: int
    key: str | None = None
    pixels: int = 0  # the outputs' pixels, estimated before the call runs (memory admission)


@dataclass
class BrickGroup:
    """All calls to one (brick, backend) in one wave: one batched backend call."""

    tool: str
    backend: str
    wave: int
    calls: list[BrickCall]


@dataclass
class GroupResult:
    """Checked outputs (or a per-call error) in call order; ``hits`` marks calls answered by the node cache."""

    outputs: list[dict[str, Any] | BrickError]
    seconds: float
    hits: list[bool] = field(default_factory=list)
    models: list[ModelUse] = field(default_factory=list)
    backend: str | None = None  # the backend that ran, when it is not the group's (a fallback)
    fallback: str | None = None


class Executor:
    """Runs workflows with the backends a Toolset chose; optionally caches node results."""

    def __init__(self, toolset: Toolset | None = None, cache: NodeCache | None = None,
                 constraints: Sequence[Constraint] = ()) -> None:
        self.toolset = toolset or Toolset()
        self.cache = cache
        self.constraints = list(constraints)
        settings = self.toolset.config.executor
        self.limits = WorkflowLimits.of(settings)
        self.max_image_pixels = settings.max_image_pixels
        self.max_item_pixels = settings.max_item_pixels
        self.max_batch_pixels = settings.max_batch_pixels

    def run(self, workflow: Workflow, image: np.ndarray, mask: np.ndarray | None = None, seed: int = 0,
            item_id: str = "item") -> EditResult:
        """Edit one image."""
        return self.run_many([EditItem(item_id, image, workflow, mask, seed)])[0]

    def run_many(self, items: Sequence[EditItem]) -> list[EditResult]:
        """Edit many images in waves; a failing item stops only itself."""
        waves = self.start(items)
        while groups := waves.next_groups():
            for group in groups:
                waves.record(group, self.run_group(group))
        return waves.results()

    def start(self, items: Sequence[EditItem]) -> WaveRun:
        """Validate every item and prepare its waves (invalid items are finished at once)."""
        return WaveRun(self, items)

    def run_group(self, group: BrickGroup) -> GroupResult:
        """Run one batched call of the group's pinned backend over the calls the node cache cannot answer, check
        every output and cache it.

        A ``BrickError`` raised by the backend fails every item of the group with its message (the brick refused
        the inputs). A fault of the machinery (``legoedit_core.faults.is_fault``: the device out of memory, a CUDA
        error, a dead engine, storage) raises, with no result for any item, and so does a backend that is not the
        one the group was pinned to (``BackendMismatch``). Any other exception of a batched call is some item's:
        the calls are run again one at a time, so that it fails only the item it belongs to.
        Groups may run on many threads at once: every model they use is lent by the model runtime to one call at
        a time, and the models used are recorded with the result.
        """
        spec = self.toolset.spec(group.tool)
        assert spec is not None
        cached = [self.cache.get(c.key) if self.cache is not None and c.key is not None else None
                  for c in group.calls]
        misses = [call for call, hit in zip(group.calls, cached, strict=True) if hit is None]
        started = time.perf_counter()
        results = self._run_backend(group, misses) if misses else GroupResult([], 0.0)
        computed = iter(results.outputs)
        outputs: list[dict[str, Any] | BrickError] = []
        for call, hit in zip(group.calls, cached, strict=True):
            if hit is not None:
                outputs.append(hit)
                continue
            checked = _check_outputs(spec, next(computed), call.inputs, self.max_image_pixels)
            if self.cache is not None and call.key is not None and not isinstance(checked, BrickError):
                self.cache.put(call.key, checked)
            outputs.append(checked)
        return GroupResult(outputs, time.perf_counter() - started, [hit is not None for hit in cached],
                           results.models, results.backend, results.fallback)

    def _run_backend(self, group: BrickGroup, calls: list[BrickCall]) -> GroupResult:
        """The pinned backend's raw outputs for ``calls`` (a ``BrickError`` it raised, for each of them)."""
        backend, fallback = self.toolset.pinned_backend(group.tool, group.backend)
        with ModelRuntime.recording() as uses:
            outputs = _batch_outputs(group.tool, backend, calls)
        return GroupResult(outputs, 0.0, models=uses, backend=backend.name if fallback else None, fallback=fallback)


def _batch_outputs(tool: str, backend: Backend, calls: list[BrickCall]) -> list[dict[str, Any] | BrickError]:
    """Batched calls of ``backend`` over ``calls``, in chunks that fit in memory (``faults.run_fitting_memory``, the
    one owner of out-of-memory: it halves a failing chunk and raises ``MemoryExhausted``, a fault, once; memory is
    never an item's status). Another fault raises. Any other error of a chunk runs each of its calls alone (seeds
    are per call, so a batch equals its calls one at a time), so the error stays with the item that raises it."""

    def run(chunk: list[BrickCall]) -> list[dict[str, Any] | BrickError]:
        try:
            outputs = list(backend.run_batch([c.inputs for c in chunk], [c.seed for c in chunk]))
            if len(outputs) != len(chunk):
                raise Fault(f"{tool} backend {backend.name!r} returned {len(outputs)} results for {len(chunk)} "
                            "inputs")
            return outputs
        except BrickError as error:
            return [error] * len(chunk)
        except Exception as error:
            if is_fault(error):
                raise
            if len(chunk) == 1:
                return [item_error(error)]
        return [output for call in chunk for output in run([call])]

    return run_fitting_memory(calls, run, f"{tool} ({backend.name})")


class _ItemState:
    def __init__(self, item: EditItem, pending: list[str]) -> None:
        self.item = item
        self.pending = pending  # node ids still to run, in dependency order
        self.needed = list(pending)
        self.nodes = {node.id: node for node in item.workflow.nodes}
        self.values: dict[str, dict[str, Any]] = {}
        # How many pending nodes still read each node's outputs: at zero its images are let go.
        self.readers: dict[str, int] = {}
        for node_id in pending:
            for ref in dependencies(self.nodes[node_id]):
                self.readers[ref.source] = self.readers.get(ref.source, 0) + 1
        self.keys: dict[str, dict[str, str]] = {}  # content keys of values, when caching
        self.reserved = 0  # pixels admitted for the outputs of this item's calls in flight
        self.trace: list[NodeTrace] = []
        self.result: EditResult | None = None


class WaveRun:
    """The state of a many-item run: which nodes are done, which are ready, and each item's outcome."""

    def __init__(self, executor: Executor, items: Sequence[EditItem]) -> None:
        self.executor = executor
        self.wave = 0
        self.states: list[_ItemState] = []
        for item in items:
            problems = validate(item.workflow, executor.toolset, executor.constraints, executor.limits)
            state = _ItemState(item, [] if problems else needed_nodes(item.workflow))
            if problems:
                state.result = EditResult(item.id, "invalid_plan", error="; ".join(str(p) for p in problems))
            elif executor.cache is not None:
                state.keys[INPUT] = item.keys if item.keys is not None else input_keys(item.image, item.mask)
            self.states.append(state)

    def next_groups(self) -> list[BrickGroup]:
        """The next wave's groups (the node cache is asked in ``run_group``). Empty when all done."""
        while True:
            self.wave += 1
            groups: dict[tuple[str, str], BrickGroup] = {}
            progressed = False
            for index, state in enumerate(self.states):
                if state.result is not None:
                    continue
                for node_id in self._ready(state):
                    progressed = True
                    call = self._prepare(index, state, node_id)
                    if call is None:
                        break  # the item failed while preparing this node
                    tool = state.nodes[node_id].tool
                    backend = self.executor.toolset.backend_class(tool).name
                    groups.setdefault((tool, backend), BrickGroup(tool, backend, self.wave, [])).calls.append(call)
                self._finish_if_done(state)
            for group in groups.values():  # an item that failed while preparing a node runs none of its calls
                group.calls = [call for call in group.calls if self.states[call.item].result is None]
            split = [part for group in groups.values() if group.calls for part in self._split(group)]
            if split or not progressed:
                return sorted(split, key=self._model_order)

    def record(self, group: BrickGroup, result: GroupResult) -> None:
        """Store a group's outputs in each item; a per-item error fails that item alone."""
        hits = result.hits or [False] * len(group.calls)
        seconds = result.seconds / max(1, hits.count(False))
        for call, outputs, hit in zip(group.calls, result.outputs, hits, strict=True):
            state = self.states[call.item]
            if state.result is not None:
                continue
            backend = group.backend if hit else result.backend or group.backend
            trace = _trace(state, call.node, backend, 0.0 if hit else seconds, cache_hit=hit, wave=group.wave,
                           batch_size=len(group.calls), models=[] if hit else [asdict(use) for use in result.models],
                           fallback=None if hit else result.fallback)
            if isinstance(outputs, BrickError):
                trace.error = str(outputs)
                self._fail(state, call.node, group.tool, str(outputs))
                continue
            self._store(state, call, outputs)
            self._finish_if_done(state)

    def results(self) -> list[EditResult]:
        """One result per item, in input order. Call after ``next_groups`` returned no groups."""
        return [s.result or EditResult(s.item.id, "failed", error="run did not finish", trace=s.trace)
                for s in self.states]

    # ------------------------------------------------------------------------------------------------ internals

    def _split(self, group: BrickGroup) -> list[BrickGroup]:
        """The group as calls whose outputs fit ``max_batch_pixels`` together (one call at least in each)."""
        parts: list[BrickGroup] = []
        total = 0
        for call in group.calls:
            if not parts or (total + call.pixels > self.executor.max_batch_pixels and parts[-1].calls):
                parts.append(BrickGroup(group.tool, group.backend, group.wave, []))
                total = 0
            parts[-1].calls.append(call)
            total += call.pixels
        return parts

    def _admit(self, state: _ItemState, node: Node, spec: BrickSpec, inputs: dict[str, Any]) -> int:
        """The pixels of the node's outputs, admitted before it runs; ``BrickError`` when one output would be too
        large (``max_image_pixels``) or the item would hold too many pixels at once (``max_item_pixels``)."""
        (width, height), count = _output_size(inputs), _image_outputs(spec)
        limit = self.executor.max_image_pixels
        if width * height > limit:
            raise BrickError(f"its output would be {width}x{height}, above the limit of {limit} pixels "
                             "(executor.max_image_pixels); nothing was computed")
        pixels = width * height * count
        held = _pixels(state.item.image) + _pixels(state.item.mask) + state.reserved + sum(
            _pixels(value) for outputs in state.values.values() for value in outputs.values())
        if held + pixels > self.executor.max_item_pixels:
            raise BrickError(f"with its output this item would hold {(held + pixels) / 1e6:.1f} MP of images at "
                             f"once, above the limit of {self.executor.max_item_pixels / 1e6:.1f} MP "
                             "(executor.max_item_pixels: bounds fan-out); nothing was computed")
        state.reserved += pixels
        return pixels

    def _model_order(self, group: BrickGroup) -> tuple[str, ...]:
        """Groups on one base model run next to each other, so its adapters switch once per group."""
        return self.executor.toolset.backend(group.tool).model_group()

    def _ready(self, state: _ItemState) -> list[str]:
        ready, waiting = [], []
        for node_id in state.pending:
            deps = {r.source for r in dependencies(state.nodes[node_id]) if r.source != INPUT}
            (ready if all(d in state.values for d in deps) else waiting).append(node_id)
        state.pending = waiting
        return ready

    def _prepare(self, index: int, state: _ItemState, node_id: str) -> BrickCall | None:
        node = state.nodes[node_id]
        spec = self.executor.toolset.spec(node.tool)
        assert node is not None and spec is not None
        try:
            inputs = self._resolve_inputs(state, node, spec)
            self._release_read(state, node)
            pixels = self._admit(state, node, spec, inputs)
        except BrickError as error:
            _trace(state, node_id, None, 0.0, error=str(error), wave=self.wave)
            self._fail(state, node_id, node.tool, str(error))
            return None
        seed = node_seed(state.item.seed, node_id)
        call = BrickCall(index, node_id, inputs, seed, pixels=pixels)
        if self.executor.cache is not None:
            backend = self.executor.toolset.backend_class(node.tool)
            call.key = call_key({
                "tool": node.tool, "spec": spec.version, "backend": backend.name, "version": backend.version,
                "settings": self.executor.toolset.config.brick(node.tool).backend_settings(),
                "inputs": {name: self._value_key(state, value) for name, value in node.inputs.items()},
                "seed": seed,
            })
        return call

    def _resolve_inputs(self, state: _ItemState, node: Node, spec: BrickSpec) -> dict[str, Any]:
        inputs: dict[str, Any] = {}
        for port in spec.inputs:
            if port.name not in node.inputs:
                inputs[port.name] = port.default
                continue
            raw = node.inputs[port.name]
            ref = parse_ref(raw)
            value = self._lookup(state, ref) if ref else literal_value(raw)
            try:
                inputs[port.name] = check_value(port.type, value)
            except ValueTypeError as error:
                raise BrickError(f"input {port.name!r}: {error}") from None
            if port.nonempty and not np.any(inputs[port.name] > 127):
                raise BrickError(f"the {port.name} is empty: nothing to edit")
        image = inputs.get("image")
        if isinstance(image, np.ndarray):
            for port in spec.inputs:
                value = inputs.get(port.name)
                if port.type is PortType.MASK and value is not None and size_of(value) != size_of(image):
                    (mw, mh), (iw, ih) = size_of(value), size_of(image)
                    raise BrickError(f"input {port.name!r} is {mw}x{mh} but the image is {iw}x{ih}")
        return inputs

    def _lookup(self, state: _ItemState, ref) -> Any:
        if ref.source == INPUT:
            value = state.item.image if ref.port == "image" else state.item.mask
            if value is None:
                raise BrickError(f"the workflow uses {ref} but this item has no {ref.port}")
            return value
        return state.values[ref.source][ref.port]

    @staticmethod
    def _release_read(state: _ItemState, node: Node) -> None:
        """``node`` has read its inputs: let go of the images of nodes that no pending node reads any more.

        Masks and small values stay (the judge looks at every mask a run produced); the output nodes are kept.
        """
        kept = {INPUT} | {ref.source for ref in map(parse_ref, state.item.workflow.outputs()) if ref is not None}
        for ref in dependencies(node):
            state.readers[ref.source] -= 1
            if state.readers[ref.source] == 0 and ref.source not in kept:
                values = state.values.get(ref.source, {})
                state.values[ref.source] = {port: v for port, v in values.items() if not _is_image(v)}

    def _value_key(self, state: _ItemState, raw: Any) -> Any:
        ref = parse_ref(raw)
        return state.keys[ref.source][ref.port] if ref else literal_value(raw)

    def _store(self, state: _ItemState, call: BrickCall, outputs: dict[str, Any]) -> None:
        state.values[call.node] = outputs
        state.reserved -= call.pixels  # now counted as what it is
        if call.key is not None:
            state.keys[call.node] = {port: f"{call.key}:{port}" for port in outputs}

    def _fail(self, state: _ItemState, node_id: str, tool: str, message: str) -> None:
        state.result = EditResult(state.item.id, "failed", error=f"node {node_id!r} ({tool}): {message}",
                                  failed_node=node_id, trace=state.trace, values=state.values)

    def _finish_if_done(self, state: _ItemState) -> None:
        if state.result is not None or state.pending:
            return
        if any(n not in state.values for n in state.needed):
            return  # nodes of this item are still in flight
        refs = [parse_ref(output) for output in state.item.workflow.outputs()]
        images = [state.values[ref.source][ref.port] for ref in refs]
        state.result = EditResult(state.item.id, "ok", image=images[0], trace=state.trace, values=state.values,
                                  images=images)


def _trace(state: _ItemState, node_id: str, backend: str | None, seconds: float, **fields: Any) -> NodeTrace:
    """Append (and return) the trace entry of one node of an item, carrying the node's note."""
    node = state.nodes[node_id]
    trace = NodeTrace(node_id, node.tool, backend, seconds, note=node.note, **fields)
    state.trace.append(trace)
    return trace



def _pixels(value: Any) -> int:
    return value.shape[0] * value.shape[1] if isinstance(value, np.ndarray) and value.ndim in (2, 3) else 0


def _image_outputs(spec: BrickSpec) -> int:
    return sum(1 for port in spec.outputs if port.type in (PortType.IMAGE, PortType.MASK))


def _output_size(inputs: dict[str, Any]) -> tuple[int, int]:
    """The (width, height) a node's image outputs will have, estimated before it runs: the size its ``width`` /
    ``height`` inputs ask for (a missing side follows the aspect ratio), else its largest image input's."""
    sizes = [size_of(v) for v in inputs.values() if _pixels(v)]
    width, height = max(sizes, key=lambda size: size[0] * size[1], default=(0, 0))
    asked_w, asked_h = inputs.get("width"), inputs.get("height")
    if not (width and height and isinstance(asked_w, int | float) and isinstance(asked_h, int | float)):
        return width, height
    if asked_w <= 0 and asked_h <= 0:
        return width, height
    new_w = asked_w if asked_w > 0 else width * asked_h / height
    new_h = asked_h if asked_h > 0 else height * asked_w / width
    return max(1, round(new_w)), max(1, round(new_h))


def _check_outputs(spec: BrickSpec, outputs: Any, inputs: dict[str, Any], max_pixels: int
                   ) -> dict[str, Any] | BrickError:
    """A backend's outputs for one call, normalised to the spec's port types and checked against the limits, or
    the error that explains them."""
    if isinstance(outputs, BrickError):
        return outputs
    if not isinstance(outputs, dict):
        return BrickError(f"backend returned {type(outputs).__name__}, expected a dict of outputs")
    checked = {}
    for port in spec.outputs:
        if port.name not in outputs:
            return BrickError(f"backend returned no {port.name!r} output")
        try:
            checked[port.name] = check_value(port.type, outputs[port.name])
        except ValueTypeError as error:
            return BrickError(f"output {port.name!r}: {error}")
        value = checked[port.name]
        if isinstance(value, np.ndarray) and value.shape[0] * value.shape[1] > max_pixels:
            return BrickError(f"output {port.name!r} is {value.shape[1]}x{value.shape[0]}, above the limit of "
                              f"{max_pixels} pixels (executor.max_image_pixels)")
        if port.nonempty and not np.any(value > 127):
            prompt = inputs.get("prompt")
            what = f"no {prompt!r}" if isinstance(prompt, str) and prompt.strip() else "nothing"
            return BrickError(f"{spec.name} found {what} in this image, so there is nothing to edit")
    return checked
