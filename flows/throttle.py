"""At most once per interval: for work on the flow's thread that need not follow every shard."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Throttle:
    """``due()`` is true at most once every ``interval`` seconds after ``last`` (``time.monotonic``), and always when
    forced; a true answer starts the next interval."""

    interval: float
    last: float = float("-inf")

    def due(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return False
        self.last = now
        return True
