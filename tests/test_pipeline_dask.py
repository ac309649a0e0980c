"""The same flow on a Dask cluster: the task runner is configuration, not a different pipeline."""

from __future__ import annotations

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.edit_catalogue import run_catalogue
from legoedit_core.config import Config
from legoedit_core.data.output import RunOutput
from legoedit_core.data.synthetic import write_catalogue

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
pytest.importorskip("prefect_dask", reason="the dask extra is not installed")


def test_flow_runs_on_a_dask_cluster(tmp_path):
    manifest = write_catalogue(str(tmp_path / "in"), 6, ["make it black and white", "flip it"])
    with (prefect_test_harness(server_startup_timeout=180),
          distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                   dashboard_address=None) as cluster):
        config = Config.load(overrides=["pipeline.task_runner='dask'", "pipeline.shard_size=3",
                                        f"pipeline.address='{cluster.scheduler_address}'"])
        summary = run_catalogue(manifest, str(tmp_path / "out"), config=config, report=False)
    assert summary["counts"] == {"ok": 6}
    rows = RunOutput(str(tmp_path / "out")).read_table().to_pylist()
    assert [row["id"] for row in rows] == [f"item-{i:05d}" for i in range(6)]
    assert {tuple(node["tool"] for node in row["trace"]) for row in rows} == {("GRAYSCALE",), ("FLIP",)}


def test_images_reach_dask_workers_by_reference_not_inside_the_task_graph(tmp_path, monkeypatch):
    import cloudpickle
    import prefect_dask

    graph_sizes = []
    submit = prefect_dask.DaskTaskRunner.submit

    def measuring_submit(self, task, parameters, *args, **kwargs):
        graph_sizes.append((task.name, len(cloudpickle.dumps(parameters))))  # as Dask pickles its graph
        return submit(self, task, parameters, *args, **kwargs)

    monkeypatch.setattr(prefect_dask.DaskTaskRunner, "submit", measuring_submit)
    manifest = write_catalogue(str(tmp_path / "in"), 8, ["make it black and white", "flip it"], size=(512, 512))
    with (prefect_test_harness(server_startup_timeout=180),
          distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                   dashboard_address=None) as cluster):
        config = Config.load(overrides=["pipeline.task_runner='dask'", "pipeline.shard_size=8",
                                        f"pipeline.address='{cluster.scheduler_address}'"])
        summary = run_catalogue(manifest, str(tmp_path / "out"), config=config, report=False)
    assert summary["counts"] == {"ok": 8}  # the workers read every image back from the references
    names = {name for name, _ in graph_sizes}
    assert {"plan-shard", "run-brick-groups", "write-part"} <= names
    # the shard's 8 source images alone are 6 MiB; every graph stays under 1 MiB
    assert max(size for _, size in graph_sizes) < 2**20, graph_sizes
    rows = RunOutput(str(tmp_path / "out")).read_table().to_pylist()
    assert all(row["edited_image"]["bytes"] for row in rows)
    assert not list((tmp_path / "out").glob(".scratch/*.npy"))  # the scratch images go with the run


def test_a_flow_called_as_a_deployment_calls_it_fails_in_one_line_when_its_dask_cluster_is_unreachable(tmp_path):
    """A deployment runs the flow as declared (threads): the config's runner is reached through a subflow, after a
    probe of its address, so a cluster that is not there ends the run at once, naming it."""
    import socket

    from flows.edit_catalogue import edit_catalogue
    from flows.runners import ClusterUnavailable

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    manifest = write_catalogue(str(tmp_path / "in"), 2, ["flip it"])
    config = Config.load(overrides=["pipeline.task_runner='dask'", f"pipeline.address='{address}'"])
    with (prefect_test_harness(server_startup_timeout=180),
          pytest.raises(ClusterUnavailable, match=f"^the dask cluster at {address} cannot be reached: ")):
        edit_catalogue(manifest, str(tmp_path / "out"), config=config)
    assert not (tmp_path / "out").exists()
