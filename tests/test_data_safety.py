"""Data safety without Prefect: input confinement, manifest reading, ids, the output's lease and commit records."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import numpy as np
import pytest
from flow_runs import edited_rows
from prefect.testing.utilities import prefect_test_harness

from legoedit_core.config import Config
from legoedit_core.data.datasets import DatasetError, InputRow, open_dataset
from legoedit_core.data.images import encode_png
from legoedit_core.data.inputs import InputReader
from legoedit_core.data.lease import Lease, LeaseHeld, LeaseLost
from legoedit_core.data.output import OutputMismatch, RunOutput, image_key, table_bytes
from legoedit_core.data.rows import empty_row, rows_to_table
from legoedit_core.data.synthetic import synthetic_image, write_catalogue
from legoedit_core.pipeline.shard import load_row
from legoedit_core.settings.inputs import InputSettings

SECRET = b"AWS_SECRET_ACCESS_KEY=not-a-real-secret-but-it-must-not-leak"


@pytest.fixture(scope="module")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


def escaping_catalogue(tmp_path) -> tuple[str, list[str]]:
    """Good rows mixed with one row per way out of the dataset folder; returns (manifest, escaping ids)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.env").write_bytes(SECRET)
    (outside / "photo.png").write_bytes(encode_png(synthetic_image(9)))  # a real image, but not the dataset's
    manifest = write_catalogue(str(tmp_path / "ds"), 3, ["make it black and white"])
    folder = tmp_path / "ds"
    os.symlink(outside / "secret.env", folder / "link.png")
    os.symlink(outside, folder / "linked-folder")
    os.mkfifo(folder / "pipe.png")
    escapes = {
        "absolute": str(outside / "photo.png"),
        "dotdot": "../outside/secret.env",
        "file-url": f"file://{outside / 'secret.env'}",
        "symlink": "link.png",
        "symlinked-folder": "linked-folder/photo.png",
        "proc": "/proc/self/environ",
        "dev-zero": "/dev/zero",
        "fifo": "pipe.png",
        "loopback": "http://127.0.0.1:9/x.png",
        "other-scheme": "s3://another-bucket/x.png",
    }
    with open(manifest, "a") as handle:
        for row_id, image in escapes.items():
            handle.write(json.dumps({"id": row_id, "image": image, "instruction": "make it black and white"}) + "\n")
    return manifest, list(escapes)


def test_references_outside_the_dataset_become_bad_input_and_leak_nothing(tmp_path, prefect_server):
    manifest, escapes = escaping_catalogue(tmp_path)
    started = time.monotonic()
    table = edited_rows(manifest, str(tmp_path / "out"))
    assert time.monotonic() - started < 60  # the pipe and /dev/zero did not hang the shard
    status = dict(zip(table.column("id").to_pylist(), table.column("status").to_pylist(), strict=True))
    assert [status[f"item-{i:05d}"] for i in range(3)] == ["ok"] * 3
    assert {row_id: status[row_id] for row_id in escapes} == dict.fromkeys(escapes, "bad_input")
    errors = dict(zip(table.column("id").to_pylist(), table.column("error").to_pylist(), strict=True))
    assert "outside the dataset's root" in errors["absolute"] and "not a regular file" in errors["fifo"]
    for row in table.to_pylist():
        if row["id"] in escapes:
            assert row["source_image"] is None  # no byte of a refused file in the row
    data = table_bytes(table) + json.dumps(table.drop_columns(["source_image", "edited_image"]).to_pylist()).encode()
    assert SECRET not in data and b"AWS_SECRET" not in data and os.environ["PATH"].encode() not in data


def test_extra_roots_and_schemes_are_opt_in_and_still_refuse_devices_and_private_hosts(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "photo.png").write_bytes(encode_png(synthetic_image(1)))
    (tmp_path / "ds").mkdir()
    refused = InputReader(str(tmp_path / "ds"))
    row = InputRow(0, "a", "flip it", str(outside / "photo.png"))
    assert "outside the dataset's root" in load_row(row, refused).row.error
    allowed = InputReader(str(tmp_path / "ds"), settings=InputSettings(extra_roots=[str(outside), "/dev"],
                                                                       schemes=["http"]))
    assert load_row(InputRow(0, "a", "flip it", str(outside / "photo.png")), allowed).image.shape == (72, 96, 3)
    assert "not a regular file" in load_row(InputRow(0, "z", "flip it", "/dev/zero"), allowed).row.error
    loopback = load_row(InputRow(0, "u", "flip it", "http://127.0.0.1:9/x.png"), allowed).row.error
    assert "loopback or private address" in loopback
    small = InputReader(str(tmp_path / "ds"), settings=InputSettings(extra_roots=[str(outside)], max_image_bytes=100))
    assert "above 100" in load_row(InputRow(0, "b", "flip it", str(outside / "photo.png")), small).row.error


def test_a_row_whose_image_does_not_decode_carries_no_bytes(tmp_path):
    manifest = write_catalogue(str(tmp_path), 1)
    (tmp_path / "notes.png").write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    dataset = open_dataset(manifest)
    loaded = load_row(InputRow(0, "n", "flip it", str(tmp_path / "notes.png")), dataset.reader())
    assert "not a recognised image format" in loaded.row.error and loaded.source is None


def test_per_row_problems_are_row_errors_not_shard_failures(tmp_path):
    lines = [{"id": "huge-seed", "image": "x.png", "instruction": "flip it", "seed": 2**63},
             {"id": "x" * 5000, "image": "x.png", "instruction": "flip it"},
             {"id": "fine", "image": "x.png", "instruction": "flip it", "seed": 2**63 - 1}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = open_dataset(str(tmp_path / "m.jsonl")).read_rows(0, 3)
    assert "outside the 64-bit range" in rows[0].error
    assert "5000 characters long" in rows[1].error
    assert rows[2].error is None and rows[2].seed == 2**63 - 1


def test_duplicate_ids_are_refused_with_their_lines(tmp_path):
    lines = [{"id": i, "image": "x.png", "instruction": "flip it"} for i in ("a", "b", "a", "c", "b", "a")]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(DatasetError, match=r"2 id\(s\) occur more than once.*'a' on lines 1, 3, 6; 'b' on lines 2, 5"):
        open_dataset(str(tmp_path / "m.jsonl"))


def test_csv_with_a_byte_order_mark_and_a_broken_quote(tmp_path):
    write_catalogue(str(tmp_path), 2)
    body = "id,image,instruction\na,images/item-00000.png,flip it\nb,images/item-00001.png,make it grey\n"
    (tmp_path / "bom.csv").write_bytes(body.encode("utf-8-sig"))
    dataset = open_dataset(str(tmp_path / "bom.csv"))
    assert [(r.id, r.error) for r in dataset.read_rows(0, 2)] == [("a", None), ("b", None)]
    broken = 'id,image,instruction\na,x.png,flip it\nb,x.png,"make it\nc,x.png,grey\nd,x.png,grey\n'
    (tmp_path / "broken.csv").write_text(broken)
    with pytest.raises(DatasetError, match=r"line 3: broken CSV .*quote left open"):
        open_dataset(str(tmp_path / "broken.csv"))


def test_image_file_names_are_collision_free_and_bounded():
    ids = ["a/b", "a_b", "a b", "東京", "大阪", "x" * 5000, "x" * 5001]
    keys = [image_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert all(len(key) < 100 and key.startswith("images/") and key.endswith(".png") for key in keys)
    assert image_key("a/b") == image_key("a/b")  # stable: a rerun writes the same file


# ---------------------------------------------------------------------------------------------- the output
def run_record(config: Config | None = None, fingerprint: str = "d1") -> dict:
    return {"dataset_fingerprint": fingerprint, "shard_size": 2, "config": (config or Config()).model_dump(mode="json")}


def test_a_second_writer_is_refused_while_the_lease_is_held_and_may_steal_it_once_expired(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGOEDIT_LEASE_SECONDS", "1.5")
    first, second = RunOutput(str(tmp_path)), RunOutput(str(tmp_path))
    with first.writing(run_record()):
        time.sleep(1.0)  # the lease is renewed in the background, so it outlives its 1.5 s
        with pytest.raises(LeaseHeld, match=r"is being written by .* pid"), second.writing(run_record()):
            pass
        time.sleep(1.0)
        with pytest.raises(LeaseHeld), second.writing(run_record()):
            pass
    with second.writing(run_record()):  # released at the end: no need to wait
        pass

    stale = Lease(RunOutput(str(tmp_path)).storage, seconds=1.0)
    stale.acquire()
    stale._stop.set()  # a writer that hangs: it stops renewing
    time.sleep(1.2)
    thief = Lease(RunOutput(str(tmp_path)).storage, seconds=5.0)
    thief.acquire()  # expired: taken over
    with pytest.raises(LeaseLost, match="no longer owns the output"):
        stale.check()
    stale.renew()
    assert stale.lost is not None  # its renewal cannot win the generation back either
    thief.release()
    names = sorted(os.listdir(tmp_path / "_lease"))  # older epochs keep their first object, the newest a few
    assert {n[:10] for n in names if not n.endswith("-000000.json")} == {"0000000004"}
    assert len(names) <= 4 + 4


def test_two_writers_racing_for_a_free_output_get_one_lease(tmp_path):
    storage = RunOutput(str(tmp_path)).storage
    leases = [Lease(storage, seconds=30) for _ in range(6)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(leases))

    def take(lease: Lease) -> None:
        barrier.wait()
        try:
            lease.acquire()
            outcomes.append("held")
        except LeaseHeld:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["held"] + ["refused"] * 5
    for lease in leases:
        lease._stop.set()


def test_a_rerun_with_another_config_is_refused_and_names_what_changed(tmp_path):
    output = RunOutput(str(tmp_path))
    with output.writing(run_record()):
        pass
    changed = run_record(Config.load(overrides=["planner.max_attempts=7"]))
    expected = r"config_fingerprint.*changed: planner.max_attempts.*recorded-config"
    with pytest.raises(OutputMismatch, match=expected), output.writing(changed):
        pass
    with output.writing(run_record(Config.load(overrides=["pipeline.max_concurrent_shards=9"]))):
        pass  # how a run is scheduled is not part of the fingerprint
    with output.writing(run_record(fingerprint="d2")):
        pass  # another catalogue (or the same one grown): the run makes a new version of what changed


def test_commits_cannot_go_backwards(tmp_path):
    output = RunOutput(str(tmp_path))
    table = rows_to_table([empty_row("a", "ok")])
    with output.writing(run_record()):
        late = output.write_part(0, table)
        for shard in range(4):
            output.commit(output.write_part(shard, table))
    assert sorted(output.finished()) == [0, 1, 2, 3]
    # A commit that the network delayed lands after the others: it adds a record, it cannot remove any.
    output.commit(late)
    assert sorted(output.finished()) == [0, 1, 2, 3]
    assert output.finished()[0]["attempt"] == 1  # it took the next free name; the first record is untouched
    assert json.loads((tmp_path / "_commits" / "00000-0000.json").read_text())["holder"] is not None
    # A writer whose lease another run took cannot commit at all.
    other = RunOutput(str(tmp_path))
    with other.writing(run_record()):
        output.lease = Lease(output.storage)
        output.lease.expires = time.time() - 1
        with pytest.raises(LeaseLost):
            output.commit(late)


def test_images_in_memory_arrays_are_untouched_by_confinement(tmp_path):
    # Embedded image bytes (a Parquet dataset's image struct) are the dataset's own; only the size cap applies.
    reader = InputReader(str(tmp_path), settings=InputSettings(max_image_bytes=10))
    data = encode_png(np.zeros((4, 4, 3), np.uint8))
    assert "more than 10 bytes" in load_row(InputRow(0, "e", "flip it", data), reader).row.error


def test_an_allowed_url_that_does_not_answer_is_a_row_status(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGOEDIT_STORAGE_ATTEMPTS", "2")
    monkeypatch.setenv("LEGOEDIT_STORAGE_WAIT", "0.01")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket is closed
    reader = InputReader(str(tmp_path), settings=InputSettings(schemes=["http"], private_hosts=True))
    loaded = load_row(InputRow(0, "u", "flip it", f"http://127.0.0.1:{port}/x.png"), reader)
    assert f"http://127.0.0.1:{port}/x.png" in loaded.row.error and loaded.image is None  # a bad_input row, no raise
