"""The model runtime's settings: memory budget and reserve per device."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RuntimeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_budget_gb: dict[str, float] = Field(
        default_factory=dict,
        description="device (cuda:1) or device type (cuda) -> GiB the loaded models may hold (e.g. {cuda = 70, "
                    "cpu = 24}); a load that would pass it evicts least recently used idle models first. Unset "
                    "devices: LEGOEDIT_MODEL_BUDGET_GB, else no limit but the device's free memory")
    reserve_gb: dict[str, float] = Field(
        default_factory=dict,
        description="device or device type -> GiB kept free beside the models for activations; a load is admitted "
                    "only if the device's free memory less this reserve holds it (default: cuda 2)")
