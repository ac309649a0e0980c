"""Per-process singletons: the toolset, executor and planner a config selects, built once per worker.

Model backends load lazily and stay loaded in these objects, so every brick group a worker runs after the first
reuses the models already in memory (on Ray, keep workers alive with ``max_calls=0`` for the same effect).
"""

from __future__ import annotations

from functools import lru_cache

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.cache import DiskCache
from legoedit_core.config import Config
from legoedit_core.executor import Executor
from legoedit_core.planners import make_planner
from legoedit_core.planners.base import Planner


@lru_cache(maxsize=4)
def _toolset(config_json: str) -> Toolset:
    return Toolset(Config.model_validate_json(config_json))


@lru_cache(maxsize=4)
def _executor(config_json: str) -> Executor:
    config = Config.model_validate_json(config_json)
    cache = DiskCache(config.executor.cache_dir) if config.executor.cache_dir else None
    return Executor(_toolset(config_json), cache=cache)


@lru_cache(maxsize=4)
def _planner(config_json: str) -> Planner:
    config = Config.model_validate_json(config_json)
    return make_planner(config.planner, _toolset(config_json))


def toolset_for(config: Config) -> Toolset:
    return _toolset(config.model_dump_json())


def executor_for(config: Config) -> Executor:
    return _executor(config.model_dump_json())


def planner_for(config: Config) -> Planner:
    return _planner(config.model_dump_json())
