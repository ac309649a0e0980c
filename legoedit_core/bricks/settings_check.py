"""The ``bricks`` section of a config checked against the registry: a brick that does not exist, or a key that no
backend of the brick reads, is a typo to refuse before a run starts, not a setting to ignore silently."""

from __future__ import annotations

import difflib
from typing import Any

from legoedit_core.bricks.catalog import default_registry
from legoedit_core.bricks.registry import BrickRegistry
from legoedit_core.config import Config


def brick_settings_problems(config: Config, registry: BrickRegistry | None = None) -> list[str]:
    """One line per unknown brick or unknown settings key in ``config.bricks`` (empty: all known)."""
    registry = registry or default_registry()
    problems = []
    for name, settings in config.bricks.items():
        brick = registry.get(name)
        if brick is None:
            problems.append(f"bricks.{name}: no such brick{_did_you_mean(name, registry.names())}")
            continue
        shared = set().union(*(backend.known_settings() for backend in brick.backends.values()))
        for key, value in settings.backend_settings().items():
            backend = brick.backends.get(key)
            if backend is not None and isinstance(value, dict):  # a backend's own sub-table
                problems += _unknown(f"bricks.{name}.{key}", value, backend.known_settings(), f"backend {key}")
            elif key not in shared:
                problems += _unknown(f"bricks.{name}", {key: value}, shared | set(brick.backends),
                                     f"any {name} backend")
    return problems


def _unknown(where: str, settings: dict[str, Any], known: set[str] | frozenset[str], whose: str) -> list[str]:
    return [f"{where}.{key}: not a setting of {whose}{_did_you_mean(key, known)} (known: "
            f"{', '.join(sorted(known)) or 'none'})" for key in settings if key not in known]


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
