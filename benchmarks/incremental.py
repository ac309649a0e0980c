"""What deciding an incremental run costs: a 100,000-row catalogue with 100 new rows, against an output whose
version 1 holds the first 100,000.

Prints the seconds ``legoedit_core.data.incremental.decide`` takes (read the catalogue and the newest version's
index, list the image folders, fingerprint every row, sort them) and the image bytes it read (every image file
opened is counted, whole): the target is 0 bytes and well under 30 s on the 2-core development machine.

Version 1 is committed through the real work and version path, with rows that carry no images (only the
decision is measured here, not editing): ``python benchmarks/incremental.py [--rows 100000] [--new 100]``.
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import tempfile
import time
from pathlib import Path

from legoedit_core.config import Config
from legoedit_core.data.datasets import open_dataset
from legoedit_core.data.images import encode_png
from legoedit_core.data.incremental import commit_version, decide, work_output
from legoedit_core.data.output import RunOutput
from legoedit_core.data.rows import empty_row, rows_to_table
from legoedit_core.data.synthetic import synthetic_image

SHARD_SIZE = 1000


def write_catalogue(root: Path, start: int, stop: int, shared: bool) -> None:
    """Rows ``start:stop`` appended to ``root/catalogue.jsonl``, each with its own small PNG (or one shared)."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    data = encode_png(synthetic_image(0, 32, 24))
    lines = []
    for index in range(start, stop):
        name = "images/shared.png" if shared else f"images/item-{index:06d}.png"
        if not shared or index == 0:
            (root / name).write_bytes(data)
        lines.append(json.dumps({"id": f"item-{index:06d}", "image": name, "instruction": "make it black and white",
                                 "seed": index}))
    with open(root / "catalogue.jsonl", "a") as manifest:
        manifest.write("\n".join(lines) + "\n")


def commit_first_version(output: RunOutput, manifest: str, config: dict) -> None:
    """Version 1 of the whole catalogue through the real commit path, with image-less ``ok`` rows."""
    dataset = open_dataset(manifest)
    run = {"dataset": manifest, "dataset_fingerprint": dataset.fingerprint(), "shard_size": SHARD_SIZE,
           "config": config}
    with output.writing(run):
        change = decide(output, dataset, config, SHARD_SIZE)
        work = work_output(output, change)
        for shard in change.dataset(dataset).shards(SHARD_SIZE):
            rows = [empty_row(row_id, "ok") for row_id in change.ids[shard.start:shard.stop]]
            work.commit(work.write_part(shard.index, rows_to_table(rows)))
        commit_version(output, change, work, run)


class ImageReads:
    """Counts the image files opened (and their bytes) while active: Python's ``open`` and ``os.open``."""

    def __init__(self, images: Path) -> None:
        self.images, self.files, self.bytes = str(images), 0, 0

    def _seen(self, path) -> None:
        if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(self.images):
            self.files += 1
            self.bytes += os.path.getsize(path)

    def __enter__(self) -> ImageReads:
        self.saved = builtins.open, os.open
        python_open, os_open = self.saved
        builtins.open = lambda path, *args, **kwargs: (self._seen(path), python_open(path, *args, **kwargs))[1]
        os.open = lambda path, *args, **kwargs: (self._seen(path), os_open(path, *args, **kwargs))[1]
        return self

    def __exit__(self, *exc) -> None:
        builtins.open, os.open = self.saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--shared-image", action="store_true", help="every row names one image file")
    args = parser.parse_args()
    config = Config.load().model_dump(mode="json")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        write_catalogue(root / "in", 0, args.rows, args.shared_image)
        manifest = str(root / "in" / "catalogue.jsonl")
        output = RunOutput(str(root / "out"))
        commit_first_version(output, manifest, config)
        write_catalogue(root / "in", args.rows, args.rows + args.new, args.shared_image)
        print(f"setup: {args.rows:,} rows in version 1, {args.new} appended "
              f"({'one shared image' if args.shared_image else 'one image file each'}), "
              f"{time.perf_counter() - started:.1f} s")

        with ImageReads(root / "in" / "images") as reads:
            started = time.perf_counter()
            change = decide(output, open_dataset(manifest), config, SHARD_SIZE)
            seconds = time.perf_counter() - started
        print(f"decide: {seconds:.2f} s for {len(change.ids):,} rows: {change.describe()}")
        print(f"image bytes read while deciding: {reads.bytes} ({reads.files} image files opened)")
        with ImageReads(root / "in" / "images") as check:  # the counter itself: one image read counts its bytes
            open_dataset(manifest).reader().read(change.dataset(open_dataset(manifest)).read_rows(0, 1)[0].image)
        assert check.bytes > 0, "the image read counter missed a read"


if __name__ == "__main__":
    main()
