"""How the executor runs graphs."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ExecutorSettings(BaseModel):
    cache_dir: str | None = Field(None, description="directory of the node cache; no caching when unset")
