"""Profiles and per-brick settings, and the toolset they select from the registry.

A config names a profile (``cpu`` or ``gpu``) and, per brick, which backend to use and that backend's settings
(model id or path, dtype, steps, ...). It loads from TOML and takes ``dotted.key=value`` overrides.
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from legoedit_core.bricks.registry import BrickRegistry, default_registry
from legoedit_core.bricks.spec import Backend, BrickSpec
from legoedit_core.judge.settings import JudgeSettings
from legoedit_core.planners.settings import PlannerSettings
from legoedit_core.rl.settings import RewardSettings

Profile = Literal["cpu", "gpu"]
RESOURCES_BY_PROFILE: dict[str, tuple[str, ...]] = {"cpu": ("cpu",), "gpu": ("gpu", "cpu")}


class BrickSettings(BaseModel):
    """Settings for one brick: ``backend`` forces a backend; every other key goes to the backend as is."""

    model_config = ConfigDict(extra="allow")

    backend: str | None = None

    def backend_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ExecutorSettings(BaseModel):
    cache_dir: str | None = Field(None, description="directory of the node cache; no caching when unset")


class PipelineSettings(BaseModel):
    """How the batch flow runs a dataset (each can also be given on the ``legoedit run`` command line)."""

    model_config = ConfigDict(extra="forbid")

    shard_size: int = Field(64, ge=1, description="rows per shard; keep it for reruns of the same output")
    max_concurrent_shards: int = Field(4, ge=1, description="shards in flight at once")
    write_images: bool = Field(False, description="also write edited images as files under the output")
    task_runner: Literal["threads", "ray", "dask"] = "threads"
    address: str | None = Field(None, description="Ray or Dask cluster address for the ray / dask task runners")
    ray_brick_resources: bool = Field(False, description="route brick groups to Ray workers with brick:<NAME>")
    judge: bool = Field(False, description="judge every shard's edits (the judge section) into the judge columns")


class Config(BaseModel):
    """Everything a run is configured by. Defaults are the CPU profile with no model."""

    model_config = ConfigDict(extra="forbid")

    profile: Profile = "cpu"
    bricks: dict[str, BrickSettings] = Field(default_factory=dict)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    planner: PlannerSettings = Field(default_factory=PlannerSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    rewards: RewardSettings = Field(default_factory=RewardSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
        """Read a TOML file (or nothing) and apply ``key.sub=value`` overrides, values parsed as TOML.

        The chosen profile's defaults (``legoedit_core/profiles/<profile>.toml``) lie under both.
        """
        data: dict[str, Any] = tomllib.loads(Path(path).read_text()) if path else {}
        for override in overrides or []:
            key, sep, raw = override.partition("=")
            if not sep:
                raise ValueError(f"override {override!r} is not key=value")
            _set_dotted(data, key.strip(), _parse_toml_value(raw.strip()))
        return cls.model_validate(_merged(profile_defaults(str(data.get("profile", "cpu"))), data))

    def brick(self, name: str) -> BrickSettings:
        return self.bricks.get(name, BrickSettings())


def profile_defaults(profile: str) -> dict[str, Any]:
    """The settings a profile starts from (empty for a profile without a defaults file)."""
    defaults = resources.files("legoedit_core") / "profiles" / f"{profile}.toml"
    return tomllib.loads(defaults.read_text()) if defaults.is_file() else {}


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, table by table."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def _parse_toml_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word is a string


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


@dataclass
class Unavailable:
    """Why a brick cannot run in this configuration."""

    reason: str


class Toolset:
    """The bricks a config can actually run: one chosen backend per brick, or the reason there is none."""

    def __init__(self, config: Config | None = None, registry: BrickRegistry | None = None) -> None:
        self.config = config or Config()
        self.registry = registry or default_registry()
        self._passed_over: dict[str, list[str]] = {}
        self._choice: dict[str, type[Backend] | Unavailable] = {
            brick.spec.name: self._choose(brick.spec.name) for brick in self.registry
        }
        self._instances: dict[str, Backend] = {}
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
