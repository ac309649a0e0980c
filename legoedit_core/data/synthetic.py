"""Small generated catalogues for benchmarks and tests: PNG images plus a ``catalogue.jsonl`` manifest.

The images are drawn with numpy from the seed (a gradient and a few rectangles), so a catalogue of any size is
cheap to make anywhere fsspec can write (a folder, ``s3://``, ``memory://``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from legoedit_core.data.images import encode_png
from legoedit_core.data.storage import Storage

# Instructions the rules planner turns into cheap CPU workflows (one or two waves of function bricks).
CHEAP_INSTRUCTIONS = (
    "make it black and white",
    "flip it horizontally",
    "brighten the photo",
    "sharpen the image",
    "turn it into a pencil sketch",
    "make it black and white and then flip it",
)
MANIFEST = "catalogue.jsonl"


def synthetic_image(seed: int, width: int = 96, height: int = 72) -> np.ndarray:
    """A colourful RGB test image: a gradient with a few rectangles, all from ``seed``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = rng.integers(0, 256, 3)
    image = (base + np.stack([x * 2, y * 2, (x + y)], axis=-1)) % 256
    for _ in range(3):
        x0, y0 = int(rng.integers(0, width - 8)), int(rng.integers(0, height - 8))
        image[y0 : y0 + int(rng.integers(8, height // 2)), x0 : x0 + int(rng.integers(8, width // 2))] = \
            rng.integers(0, 256, 3)
    return image.astype(np.uint8)


def write_catalogue(root: str, count: int, instructions: Sequence[str] = CHEAP_INSTRUCTIONS,
                    storage_options: dict[str, Any] | None = None, size: tuple[int, int] = (96, 72)) -> str:
    """Write ``count`` images and a manifest under ``root``; return the manifest's URI."""
    storage = Storage(root, storage_options)
    records = []
    for index in range(count):
        name = f"images/item-{index:05d}.png"
        storage.write_bytes(encode_png(synthetic_image(index, *size)), name)
        records.append({"id": f"item-{index:05d}", "image": name,
                        "instruction": instructions[index % len(instructions)], "seed": index})
    storage.write_bytes("".join(json.dumps(r) + "\n" for r in records).encode(), MANIFEST)
    return storage.uri(MANIFEST)
