"""The brick registry: declarations and backends by name, built-ins plus entry-point plugins.

Third-party packages add bricks through the entry-point group ``legoedit.bricks``; each entry point names a
callable ``register(registry)`` that calls ``registry.add_brick`` / ``registry.add_backend``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from legoedit_core.bricks.spec import Backend, BrickSpec

ENTRY_POINT_GROUP = "legoedit.bricks"
log = logging.getLogger(__name__)


@dataclass
class Brick:
    """A declaration with the backends that can run it, in order of preference."""

    spec: BrickSpec
    backends: dict[str, type[Backend]] = field(default_factory=dict)


class BrickRegistry:
    """All known bricks. Iteration order is registration order, which is the order the catalogue shows."""

    def __init__(self) -> None:
        self._bricks: dict[str, Brick] = {}

    def add_brick(self, spec: BrickSpec) -> None:
        if spec.name in self._bricks:
            raise ValueError(f"brick {spec.name} is already registered")
        self._bricks[spec.name] = Brick(spec)

    def add_backend(self, backend: type[Backend]) -> None:
        brick = self._bricks.get(backend.brick)
        if brick is None:
            raise ValueError(f"backend {backend.name!r} is for unknown brick {backend.brick}")
        if backend.name in brick.backends:
            raise ValueError(f"brick {backend.brick} already has a backend named {backend.name!r}")
        brick.backends[backend.name] = backend

    def get(self, name: str) -> Brick | None:
        return self._bricks.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._bricks

    def __iter__(self):
        return iter(self._bricks.values())

    def names(self) -> list[str]:
        return list(self._bricks)


def load_plugins(registry: BrickRegistry) -> list[str]:
    """Call every ``legoedit.bricks`` entry point on the registry; return the names of those that loaded.

    A plugin that fails to load is logged and skipped, so one broken package cannot take the system down.
    """
    loaded = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()(registry)
        except Exception:
            log.exception("brick plugin %s failed to load; skipped", entry_point.name)
            continue
        loaded.append(entry_point.name)
    return loaded
