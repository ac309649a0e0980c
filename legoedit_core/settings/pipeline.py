"""How the batch flows run a dataset."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    task_retries: int = Field(2, ge=0, description="retries of a task that raised (a fault, never an item failure)")
    retry_delay_seconds: float = Field(10.0, ge=0, description="wait before a task's first retry")
    retry_backoff: float = Field(2.0, ge=1, description="each further retry waits this many times longer")
    content_hash: bool = Field(False, description=(
        "identify a dataset's files by a hash of their bytes, not by size and mtime (read every image once per run; "
        "for stores where a file can be rewritten in place with the same size and mtime)"))
    memory_budget_bytes: int = Field(12 * 2**30, ge=2**26, description=(
        "decoded image bytes all shards in flight may hold together (each gets an equal share; a shard whose "
        "images do not fit its share at once is edited a slice at a time; an image that alone needs more is its "
        "row's bad_input); the default suits a 24 GB machine"))

    def shard_memory(self) -> int:
        """The bytes of decoded images one shard may hold: its share of the memory budget."""
        return self.memory_budget_bytes // self.max_concurrent_shards
