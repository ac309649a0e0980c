"""A run's configuration: the settings of every section, assembled, with the profile's defaults beneath.

A config names a profile (``cpu`` or ``gpu``) and, per brick, which backend to use and that backend's settings
(model id or path, dtype, steps, ...). It loads from TOML and takes ``dotted.key=value`` overrides. The settings
models themselves live in ``legoedit_core.settings``; nothing in the core below the pipeline needs more than them.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from legoedit_core.settings.bricks import BrickSettings
from legoedit_core.settings.executor import ExecutorSettings
from legoedit_core.settings.inputs import InputSettings
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.settings.pipeline import PipelineSettings
from legoedit_core.settings.planner import PlannerSettings
from legoedit_core.settings.rewards import RewardSettings
from legoedit_core.settings.runtime import RuntimeSettings

Profile = Literal["cpu", "gpu"]


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
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    inputs: InputSettings = Field(default_factory=InputSettings)

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
