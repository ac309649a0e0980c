"""Issue 27 through the real command on real files: no bad row or lost lease costs a good row, large images are
edited (a shard is sliced to fit its memory share), and an output's records stay inside it. Each case sits beside
good rows of the same shard: those are ``ok``, a version is committed, each id is there once."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_cli import legoedit, one_error_line, prefect_api  # noqa: F401 (fixture: a Prefect server for the module)

from legoedit_core.data.images import encode, encode_png
from legoedit_core.data.output import RunOutput, UnsafeRecord, image_key, inside
from legoedit_core.data.synthetic import synthetic_image, write_catalogue

REPO = Path(__file__).resolve().parents[1]
GRAY = "make it black and white"
SMALL_BUDGET = "pipeline.memory_budget_bytes=67108864"  # 64 MiB: a shard's share is 16 MiB (4 shards at once)


@pytest.fixture(scope="module")
def env(prefect_api):  # noqa: F811 (the environment of a command that reports to the module's Prefect server)
    return prefect_api


def png_header(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` (its pixel data is a few hundred bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100_000)) + chunk(b"IEND", b""))


def webp_header(width: int, height: int) -> bytes:
    """A 30-byte WebP (VP8X) header declaring ``width`` x ``height``, and nothing else."""
    body = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def add_rows(manifest: str, records: list[dict], raw: list[str] = ()) -> None:
    """Append records (and raw lines) to a JSONL manifest."""
    with open(manifest, "a") as handle:
        handle.writelines([json.dumps(record) + "\n" for record in records] + [line + "\n" for line in raw])


def run(*args: str, env: dict, code: int = 0) -> subprocess.CompletedProcess:
    done = legoedit("run", *args, env=env)
    assert done.returncode == code, done.stderr[-3000:]
    return done


def current_rows(output: Path) -> dict[str, dict]:
    """The current view's rows by id, checking each id is there once."""
    rows = RunOutput(str(output)).read_table().to_pylist()
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), ids
    return {row["id"]: row for row in rows}


def test_header_limits_are_row_errors_and_a_shard_too_big_for_its_share_is_edited_in_slices(tmp_path, env):
    folder = tmp_path / "in"
    manifest = write_catalogue(str(folder), 3, [GRAY])
    (folder / "huge.png").write_bytes(png_header(50000, 50000))
    (folder / "over.png").write_bytes(png_header(8193, 8193))
    (folder / "huge.webp").write_bytes(webp_header(16383, 16383))
    (folder / "alone.png").write_bytes(encode_png(synthetic_image(7, 1200, 1200)))  # 16.5 MiB decoded: > share
    for index in range(3):  # 5.6 MiB each decoded: two fit a 16 MiB share beside the small rows, the third not
        (folder / f"mid-{index}.png").write_bytes(encode_png(synthetic_image(index, 700, 700)))
    add_rows(manifest, [{"id": name.split(".")[0] + "-" + name.split(".")[1], "image": name, "instruction": GRAY}
                        for name in ("huge.png", "over.png", "huge.webp", "alone.png")]
             + [{"id": f"mid-{i}", "image": f"mid-{i}.png", "instruction": GRAY} for i in range(3)])
    done = run(manifest, str(tmp_path / "out"), "--shard-size", "100", "--set", SMALL_BUDGET, env=env)

    rows = current_rows(tmp_path / "out")
    assert len(rows) == 10 and RunOutput(str(tmp_path / "out")).versions() == [1]
    assert [rows[i]["status"] for i in ("item-00000", "item-00001", "item-00002", "mid-0", "mid-1", "mid-2")] \
        == ["ok"] * 6
    for row_id, size in (("huge-png", "50000x50000"), ("over-png", "8193x8193"), ("huge-webp", "16383x16383")):
        assert rows[row_id]["status"] == "bad_input", rows[row_id]
        assert rows[row_id]["error"].endswith(f"{row_id.replace('-', '.')}: image is {size} "
                                              f"({int(size.split('x')[0]) ** 2 / 1e6:.1f} MP), above the 67.1 MP "
                                              "limit")
    assert rows["alone-png"]["status"] == "bad_input"
    assert "more than a shard's share of the memory budget, 16 MiB" in rows["alone-png"]["error"]
    assert "lower pipeline.max_concurrent_shards" in rows["alone-png"]["error"]
    assert len(list((tmp_path / "out").glob("work/*/_commits/*.json"))) == 1  # one shard, one part, one commit
    assert "shard 0: rows 0-8," in done.stderr and "shard 0: rows 9-9," in done.stderr  # two slices
    assert "MemoryBudgetExceeded" not in done.stderr


def test_a_huge_integer_in_jsonl_and_a_huge_csv_field_are_their_rows_errors(tmp_path, env):
    manifest = write_catalogue(str(tmp_path / "in"), 2, [GRAY])
    add_rows(manifest, [], ['{"id": "digits", "image": "images/item-00000.png", "instruction": "flip it", '
                            '"seed": ' + "7" * 4301 + "}"])
    run(manifest, str(tmp_path / "out"), env=env)
    rows = current_rows(tmp_path / "out")
    assert [rows[i]["status"] for i in ("item-00000", "item-00001")] == ["ok", "ok"]
    assert rows["line-3"]["status"] == "bad_input"
    assert rows["line-3"]["error"] == "line 3: holds a number of more than 4300 digits"

    csv_manifest = tmp_path / "in" / "catalogue.csv"
    long_text = "x" * 200_000
    csv_manifest.write_text(f"id,image,instruction\na,images/item-00000.png,{GRAY}\nlong,images/item-00001.png,"
                            f"{long_text}\nb,images/item-00001.png,{GRAY}\n")
    run(str(csv_manifest), str(tmp_path / "out-csv"), env=env)
    rows = current_rows(tmp_path / "out-csv")
    assert [rows[i]["status"] for i in ("a", "b")] == ["ok", "ok"]
    assert rows["long"]["status"] == "bad_input" and rows["long"]["error"].startswith("line 3: ")
    assert "instruction" in rows["long"]["error"]


class SlowImage(http.server.BaseHTTPRequestHandler):
    """Sends a PNG one byte every 0.2 s (each wait well under any per-read timeout)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        data = encode_png(synthetic_image(0, 64, 64))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            return  # the reader gave up

    def log_message(self, *args) -> None:
        pass


def test_a_url_that_trickles_is_cut_off_at_its_deadline(tmp_path, env):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowImage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        manifest = write_catalogue(str(tmp_path / "in"), 2, [GRAY])
        url = f"http://127.0.0.1:{server.server_address[1]}/slow.png"
        add_rows(manifest, [{"id": "slow", "image": url, "instruction": GRAY}])
        started = time.monotonic()
        run(manifest, str(tmp_path / "out"), "--set", 'inputs.schemes=["http"]', "--set",
            "inputs.private_hosts=true", "--set", "inputs.url_seconds=2", env=env)
        took = time.monotonic() - started
    finally:
        server.shutdown()
    rows = current_rows(tmp_path / "out")
    assert [rows[i]["status"] for i in ("item-00000", "item-00001")] == ["ok", "ok"]
    assert rows["slow"]["status"] == "bad_input"
    assert rows["slow"]["error"].startswith(f"{url}: refused: not received within 2 s (inputs.url_seconds")
    assert took < 120  # the image alone would take minutes to arrive


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Overwrite a file's bytes (same length) and put its mtime back: size, mtime and inode all unchanged."""
    before = path.stat()
    assert len(data) == before.st_size
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


@pytest.mark.parametrize("content_hash", [False, True], ids=["size-and-mtime", "content-hash"])
def test_content_hash_sees_an_image_rewritten_in_place(tmp_path, env, content_hash):
    folder = tmp_path / "in"
    manifest = write_catalogue(str(folder), 3, [GRAY])
    image = folder / "images" / "item-00001.bmp"  # BMP: the same size in bytes whatever its pixels
    image.write_bytes(encode(synthetic_image(1, 96, 72), "BMP"))
    Path(manifest).write_text(Path(manifest).read_text().replace("item-00001.png", "item-00001.bmp"))
    flags = ["--content-hash"] if content_hash else []
    run(manifest, str(tmp_path / "out"), *flags, env=env)
    first = current_rows(tmp_path / "out")["item-00001"]["edited_image"]["bytes"]
    rewrite_in_place(image, encode(np.full((72, 96, 3), 200, np.uint8), "BMP"))

    done = run(manifest, str(tmp_path / "out"), *flags, env=env)
    rows = current_rows(tmp_path / "out")
    assert len(rows) == 3 and all(row["status"] == "ok" for row in rows.values())
    if content_hash:
        assert "version 2: new 0, changed 1, unchanged 2, removed 0" in done.stdout
        assert rows["item-00001"]["edited_image"]["bytes"] != first
    else:  # the documented limit of size + mtime: the rewrite is not seen
        assert "nothing changed" in done.stdout and rows["item-00001"]["edited_image"]["bytes"] == first


TAMPERED = {
    "absolute part": lambda record, outside: record["parts"][0].update(path=str(outside / "part.parquet")),
    "part above the output": lambda record, outside: record["parts"][0].update(path="../outside/part.parquet"),
    "part in another bucket": lambda record, outside: record["parts"][0].update(path="s3://other/part.parquet"),
    "index outside": lambda record, outside: record.update(index="/etc/passwd"),
}


def test_records_that_lead_outside_the_output_are_refused_and_never_carried_on(tmp_path, env):
    manifest = write_catalogue(str(tmp_path / "in"), 3, [GRAY])
    output = tmp_path / "out"
    run(manifest, str(output), env=env)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(RunOutput(str(output)).current_files()[0].removeprefix("file://"), outside / "part.parquet")
    pristine = (output / "_versions" / "00001.json").read_text()
    for tamper in TAMPERED.values():
        record = json.loads(pristine)
        tamper(record, outside)
        (output / "_versions" / "00001.json").write_text(json.dumps(record))
        with pytest.raises(UnsafeRecord, match=r"_versions/00001.json \((parts|index)\) names .*not a relative path"):
            RunOutput(str(output)).read_table()
    add_rows(manifest, [{"id": "new", "image": "images/item-00000.png", "instruction": GRAY}])
    line = one_error_line(legoedit("run", manifest, str(output), env=env))  # the index still leads out
    assert "_versions/00001.json (index) names '/etc/passwd'" in line and "refused" in line
    assert RunOutput(str(output)).versions() == [1]  # nothing was committed from it
    for path in ("parts/part-00000.parquet", "a/./b", "a//b", "", "C:\\x", "~/x", "a/../../b"):
        if path != "parts/part-00000.parquet":
            with pytest.raises(UnsafeRecord):
                inside(path, "a record")
    assert inside("work/v00001-ab/parts/part-00000.parquet", "a record")


# A writer paused past its lease while another run finishes must not write a single file afterwards.
def test_a_writer_resumed_after_another_run_finished_writes_nothing(tmp_path, env):
    folder = tmp_path / "in"
    manifest = write_catalogue(str(folder), 6, [GRAY], size=(1600, 1200))
    output = tmp_path / "out"
    short_lease = env | {"LEGOEDIT_LEASE_SECONDS": "3"}
    args = ["run", manifest, str(output), "--shard-size", "1", "--concurrent-shards", "1", "--write-images"]
    paused = subprocess.Popen([sys.executable, "-c", "import sys; from legoedit.cli import main; sys.exit(main())",
                               *args], env=short_lease, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(output.glob("work/*/_commits/*.json")):
        assert paused.poll() is None and time.monotonic() < deadline, paused.communicate()
        time.sleep(0.02)
    os.kill(paused.pid, signal.SIGSTOP)  # one shard committed, the others to do: its lease runs out
    try:
        time.sleep(3.5)
        # the catalogue changed meanwhile: the run that takes over edits it into version 1 in its own work
        Path(manifest).write_text(Path(manifest).read_text().replace(
            f'"id": "item-00005", "image": "images/item-00005.png", "instruction": "{GRAY}"',
            '"id": "item-00005", "image": "images/item-00005.png", "instruction": "flip it"'))
        legoedit_run = legoedit(*args, env=short_lease)
        assert legoedit_run.returncode == 0, legoedit_run.stderr[-3000:]
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    _, stderr = paused.communicate(timeout=240)
    assert paused.returncode != 0 and "no longer owns the output" in stderr, stderr[-3000:]

    rows = current_rows(output)
    assert len(rows) == 6 and all(row["status"] == "ok" for row in rows.values())
    assert json.loads(rows["item-00005"]["workflow"])["nodes"][0]["tool"] == "FLIP"
    current = set(RunOutput(str(output)).current_files())
    for part in output.glob("work/*/parts/*.parquet"):  # a part outside the view holds only what the view holds
        if f"file://{part}" not in current and str(part) not in current:
            for row in RunOutput(str(output)).read_path(str(part.relative_to(output))).to_pylist():
                assert row["edited_image"]["bytes"] == rows[row["id"]]["edited_image"]["bytes"], part
    by_name = {Path(image_key(row_id)).name: row_id for row_id in rows}
    images = list(output.glob("**/images/*.png"))
    assert len(images) >= 6 and all(image.relative_to(output).parts[0] == "work" for image in images)
    for image in images:  # every image file under the output is what the current view holds for its id
        assert image.read_bytes() == rows[by_name[image.name]]["edited_image"]["bytes"], image
    current_images = RunOutput(str(output)).current_images()
    assert sorted(current_images) == sorted(rows)
    assert all(Path(uri.removeprefix("file://")).read_bytes() == rows[row_id]["edited_image"]["bytes"]
               for row_id, uri in current_images.items())
