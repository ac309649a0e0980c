"""How the executor runs graphs."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ExecutorSettings(BaseModel):
    cache_dir: str | None = Field(None, description="directory of the node cache; no caching when unset")
    max_nodes: int = Field(64, ge=1, description="nodes a workflow may have")
    max_depth: int = Field(32, ge=1, description="the longest chain of dependent nodes a workflow may have")
    max_image_side: int = Field(8192, ge=1, description="largest literal width / height a node may be given")
    max_image_pixels: int = Field(8192 * 8192, ge=1, description=(
        "largest image a node may produce (pixels; the decoder's limit too, so an image that decodes can be edited)"))
    max_item_pixels: int = Field(4 * 8192 * 8192, ge=1, description=(
        "pixels of images one item may hold at once: its input and every node output not yet let go, outputs "
        "counted before their node runs (bounds fan-out)"))
    max_batch_pixels: int = Field(2 * 8192 * 8192, ge=1, description=(
        "pixels of output one batched brick call may produce; larger groups are split into several calls"))
    allow_cpu_fallback: bool = Field(False, description=(
        "a worker that cannot run a brick's pinned GPU backend runs the brick's CPU backend instead (recorded in "
        "each node's trace as its fallback) rather than failing the task"))
