"""The output's lease is fenced: a writer paused past its lease cannot commit once another run took over, a dead
holder on this host is taken over at once, and ``kill -9`` of a run's process group leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from legoedit_core.data.lease import Lease, LeaseHeld
from legoedit_core.data.output import RunOutput
from legoedit_core.data.rows import empty_row, rows_to_table
from legoedit_core.data.synthetic import write_catalogue

REPO = Path(__file__).resolve().parents[1]
RUN = {"dataset_fingerprint": "d", "shard_size": 2, "config": {}}
SHARDS = 8


def part(shard: int):
    return rows_to_table([empty_row(f"id-{shard}-{i}", "ok") for i in range(2)])


WRITER = textwrap.dedent(f"""
    import sys, time
    from legoedit_core.data.output import RunOutput
    from legoedit_core.data.rows import empty_row, rows_to_table
    output = RunOutput(sys.argv[1])
    with output.writing({RUN!r}):
        for shard in range({SHARDS}):
            table = rows_to_table([empty_row(f"id-{{shard}}-{{i}}", "ok") for i in range(2)])
            output.commit(output.write_part(shard, table))
            print("committed", shard, flush=True)
            time.sleep(0.4)
""")


def test_a_writer_paused_past_its_lease_cannot_commit_after_another_run_took_over(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGOEDIT_LEASE_SECONDS", "1.5")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    while "committed 1" not in writer.stdout.readline():
        assert writer.poll() is None, writer.communicate()
    os.kill(writer.pid, signal.SIGSTOP)  # paused: it stops renewing, and its lease runs out
    time.sleep(2.0)
    output = RunOutput(str(tmp_path))
    with output.writing(RUN):  # the lease expired: this run takes it over (a new epoch)
        assert output.lease.took_over is None  # the paused process is alive: taken over only as expired
        todo = [shard for shard in range(SHARDS) if shard not in output.finished()]
        assert todo[0] in (2, 3)
        os.kill(writer.pid, signal.SIGCONT)  # resumed while this run writes
        for shard in todo:
            output.commit(output.write_part(shard, part(shard)))
            time.sleep(0.3)
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode != 0 and "LeaseLost" in stderr and "no longer owns the output" in stderr
    finished = output.finished()
    assert sorted(finished) == list(range(SHARDS))
    ours = {shard for shard, record in finished.items() if record["holder"] == output_holder(tmp_path)}
    assert ours == set(todo)  # the paused writer committed nothing after the takeover
    ids = pq.read_table(tmp_path / "parts").column("id").to_pylist()
    assert sorted(ids) == sorted(f"id-{s}-{i}" for s in range(SHARDS) for i in range(2))  # each id once
    epochs = sorted(name.split("-")[0] for name in os.listdir(tmp_path / "_lease"))
    assert epochs[-1] == "0000000002" and "0000000003" not in epochs  # no generation re-created or added


def output_holder(folder: Path) -> str:
    """The holder of the newest lease epoch of an output."""
    return Lease(RunOutput(str(folder)).storage).latest()[1]["holder"]


def test_a_commit_put_by_a_fenced_writer_after_the_takeover_is_ignored(tmp_path):
    paused, other = RunOutput(str(tmp_path)), RunOutput(str(tmp_path))
    paused.lease = Lease(paused.storage, seconds=0.5)
    paused.lease.acquire()
    paused.lease._stop.set()  # it stops renewing
    paused.commit(paused.write_part(0, part(0)))
    time.sleep(0.6)
    with other.writing(RUN):
        other.commit(other.write_part(1, part(1)))
        paused.lease.expires = time.time() + 60  # as if it had passed its check just before it paused
        paused.lease.check = lambda: None
        paused.commit(paused.write_part(1, part(1)))  # a late put, after the new epoch began
        assert len(os.listdir(tmp_path / "_commits")) == 3
        assert other.finished()[1]["holder"] == other.lease.holder  # the late record is ignored
        assert other.finished()[0]["holder"] == paused.lease.holder  # committed before the takeover: kept


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path, caplog):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    storage = RunOutput(str(tmp_path)).storage
    record = {"holder": f"this host pid {holder.pid} run x", "expires": time.time() + 3600, "released": False,
              "written": time.time(), "host": socket.gethostname(), "pid": holder.pid,
              "started": psutil.Process(holder.pid).create_time()}
    storage.write_bytes(json.dumps(record).encode(), "_lease/0000000001-000000.json")
    with pytest.raises(LeaseHeld, match="is being written by this host pid"):
        Lease(storage).acquire()  # alive: refused
    holder.kill()
    holder.wait()
    lease = Lease(storage)
    lease.acquire()  # dead: taken over at once, though its lease runs for an hour
    assert f"took over the lease of this host pid {holder.pid} run x at once: its process (pid {holder.pid}) is gone" \
        in caplog.text
    assert lease.epoch == 2
    lease.release()


def test_kill_9_of_the_process_group_leaves_no_process_and_a_rerun_takes_over_at_once(tmp_path):
    manifest = write_catalogue(str(tmp_path / "in"), 30, ["make it black and white and then flip it"],
                               size=(256, 192))
    output = tmp_path / "out"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    env.update(PYTHONPATH=str(REPO), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    command = [sys.executable, "-m", "legoedit.cli", "run", manifest, str(output), "--shard-size", "2",
               "--concurrent-shards", "1"]
    with tempfile.TemporaryFile("w+") as stderr:
        run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + 240
        while not list(output.glob("work/*/_commits/*.json")) and time.monotonic() < deadline:
            assert run.poll() is None
            time.sleep(0.1)
        family = [run.pid] + [child.pid for child in psutil.Process(run.pid).children(recursive=True)]
        stderr.seek(0)
        server = int(re.search(r"temporary Prefect server at \S+ \(pid (\d+)\)", stderr.read()).group(1))
        assert server in family
        os.killpg(run.pid, signal.SIGKILL)  # the server has a session of its own: the group does not hold it
        run.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in family if alive(pid)]
    assert not list((tmp_path / "tmp").iterdir())  # no server log or other file left behind

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"took over the lease of {socket.gethostname()} pid {run.pid}" in rerun.stderr
    assert "rows by status: {'ok': 30}" in rerun.stdout
    ids = pq.read_table(RunOutput(str(output)).current_files()).column("id").to_pylist()
    assert sorted(ids) == [f"item-{i:05d}" for i in range(30)]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
