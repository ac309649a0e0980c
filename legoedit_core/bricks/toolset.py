"""The toolset: the bricks a config can actually run, one chosen backend per brick (or why there is none).

A run resolves the backends once (``pinned_config``: the config with every available brick's backend named) and
sends that config and each group's backend to the workers; a worker runs exactly that backend
(``pinned_backend``) or fails the task with ``BackendMismatch``, unless the config allows a GPU backend to fall
back to the brick's CPU backend.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from legoedit_core.bricks.catalog import default_registry
from legoedit_core.bricks.registry import BrickRegistry
from legoedit_core.bricks.spec import Backend, BrickSpec
from legoedit_core.config import Config
from legoedit_core.faults import Fault
from legoedit_core.runtime import ModelRuntime

RESOURCES_BY_PROFILE: dict[str, tuple[str, ...]] = {"cpu": ("cpu",), "gpu": ("gpu", "cpu")}


@dataclass
class Unavailable:
    """Why a brick cannot run in this configuration."""

    reason: str


class BackendMismatch(Fault):
    """This worker cannot run the backend a brick was pinned to for the run (a fault: the task fails)."""


@dataclass
class Fallback:
    """A pinned GPU backend this worker cannot run, replaced (as the config allows) by the brick's CPU backend."""

    backend: Backend
    reason: str


class Toolset:
    """The bricks a config can actually run: one chosen backend per brick, or the reason there is none.

    Building one applies the config's memory budgets and reserves to the process's model runtime, which its
    backends use.
    """

    def __init__(self, config: Config | None = None, registry: BrickRegistry | None = None) -> None:
        self.config = config or Config()
        runtime = ModelRuntime.default()
        for device, gigabytes in self.config.runtime.memory_budget_gb.items():
            runtime.set_budget(device, int(gigabytes * 2**30))
        for device, gigabytes in self.config.runtime.reserve_gb.items():
            runtime.set_reserve(device, int(gigabytes * 2**30))
        self.registry = registry or default_registry()
        self._passed_over: dict[str, list[str]] = {}
        self._choice: dict[str, type[Backend] | Unavailable] = {
            brick.spec.name: self._choose(brick.spec.name) for brick in self.registry
        }
        self._instances: dict[str, Backend] = {}
        self._fallbacks: dict[str, Fallback] = {}
        self._lock = threading.Lock()

    def _choose(self, name: str) -> type[Backend] | Unavailable:
        brick = self.registry.get(name)
        assert brick is not None
        settings = self.config.brick(name)
        allowed = RESOURCES_BY_PROFILE[self.config.profile]
        if not brick.backends:
            return Unavailable(f"{name} has no backend installed")
        if settings.backend is not None:
            backend = brick.backends.get(settings.backend)
            if backend is None:
                known = ", ".join(brick.backends)
                return Unavailable(f"{name} has no backend {settings.backend!r} (known: {known})")
            missing = backend.missing(settings.backend_settings())
            return Unavailable(f"{name} backend {backend.name!r}: {missing}") if missing else backend
        return self._first_runnable(name, allowed)

    def _first_runnable(self, name: str, allowed: tuple[str, ...]) -> type[Backend] | Unavailable:
        """The first backend of ``name`` that can run, preferring resources in the order of ``allowed``."""
        brick = self.registry.get(name)
        assert brick is not None
        settings = self.config.brick(name)
        candidates = sorted(brick.backends.values(),
                            key=lambda b: allowed.index(b.resource) if b.resource in allowed else 99)
        reasons = []
        for backend in candidates:
            if backend.resource not in allowed:
                reasons.append(f"{backend.name} needs the {backend.resource} profile")
                continue
            missing = backend.missing(settings.backend_settings())
            if missing is None:
                self._passed_over[name] = reasons
                return backend
            reasons.append(f"{backend.name}: {missing}")
        return Unavailable(f"{name} is not available on the {self.config.profile} profile ({'; '.join(reasons)})")

    def spec(self, name: str) -> BrickSpec | None:
        brick = self.registry.get(name)
        return brick.spec if brick else None

    def names(self) -> list[str]:
        return self.registry.names()

    def available_specs(self) -> list[BrickSpec]:
        """Declarations of the bricks that can run, in catalogue order: what the Builder is offered."""
        return [b.spec for b in self.registry if not isinstance(self._choice[b.spec.name], Unavailable)]

    def unavailable(self, name: str) -> str | None:
        """Why ``name`` cannot run, or None if it can (unknown bricks are the validator's business)."""
        choice = self._choice.get(name)
        return choice.reason if isinstance(choice, Unavailable) else None

    def passed_over(self, name: str) -> list[str]:
        """Why the backends preferred over the chosen one could not run (e.g. a GPU model's missing weights)."""
        return list(self._passed_over.get(name, []))

    def backend_class(self, name: str) -> type[Backend]:
        choice = self._choice[name]
        if isinstance(choice, Unavailable):
            raise LookupError(choice.reason)
        return choice

    def backend(self, name: str) -> Backend:
        """The chosen backend of a brick, built once with its settings."""
        with self._lock:
            if name not in self._instances:
                self._instances[name] = self.backend_class(name)(self.config.brick(name).backend_settings())
            return self._instances[name]

    def pinned_config(self) -> Config:
        """The config with the backend of every available brick named: what every worker of a run must honour."""
        bricks = dict(self.config.bricks)
        for spec in self.available_specs():
            chosen = self.backend_class(spec.name).name
            bricks[spec.name] = self.config.brick(spec.name).model_copy(update={"backend": chosen})
        return self.config.model_copy(update={"bricks": bricks})

    def pinned_backend(self, name: str, wanted: str) -> tuple[Backend, str | None]:
        """The backend ``wanted`` of brick ``name`` and None, or, when this worker cannot run it, the brick's CPU
        backend and why (only if the config allows the fallback); otherwise raises ``BackendMismatch``."""
        choice = self._choice.get(name)
        if isinstance(choice, type) and choice.name == wanted:
            return self.backend(name), None
        have = choice.reason if isinstance(choice, Unavailable) else f"it runs {choice.name!r}" if choice else \
            "it has no such brick"
        brick = self.registry.get(name)
        pinned = brick.backends.get(wanted) if brick else None
        if self.config.executor.allow_cpu_fallback and pinned is not None and pinned.resource == "gpu":
            fallback = self._fallback(name, wanted, have)
            if fallback is not None:
                return fallback.backend, fallback.reason
        raise BackendMismatch(f"{name}: the run pinned backend {wanted!r}, but this worker cannot run it ({have})")

    def _fallback(self, name: str, wanted: str, why: str) -> Fallback | None:
        with self._lock:
            if name not in self._fallbacks:
                choice = self._first_runnable(name, ("cpu",))
                if isinstance(choice, Unavailable) or choice.resource != "cpu":
                    return None
                self._fallbacks[name] = Fallback(choice(self.config.brick(name).backend_settings()),
                                                 f"{wanted} -> {choice.name}: {why}")
            return self._fallbacks[name]
