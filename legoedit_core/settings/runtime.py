"""The model runtime's settings: memory budget per device."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_budget_gb: dict[str, float] = Field(
        default_factory=dict,
        description="device -> GiB the loaded models may hold (e.g. {cuda = 70, cpu = 24}); beyond it the least "
                    "recently used idle models are evicted. Unset devices: LEGOEDIT_MODEL_BUDGET_GB, else no limit")
