"""Per-brick settings: which backend to use and that backend's own keys (model, dtype, steps, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class BrickSettings(BaseModel):
    """Settings for one brick: ``backend`` forces a backend; every other key goes to the backend as is."""

    model_config = ConfigDict(extra="allow")

    backend: str | None = None

    def backend_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
