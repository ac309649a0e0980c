"""The same flow on a local Ray cluster, with brick groups routed to workers by the ``brick:<NAME>`` resource."""

from __future__ import annotations

import socket

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.edit_catalogue import run_catalogue
from flows.runners import ClusterUnavailable
from legoedit_core.config import Config
from legoedit_core.data.output import RunOutput
from legoedit_core.data.synthetic import write_catalogue

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
prefect_ray = pytest.importorskip("prefect_ray", reason="the ray extra is not installed")


@pytest.fixture(scope="module")
def ray_cluster():
    # One node that advertises the brick resources, as `ray start --resources=...` would on a model worker; one per
    # module, since a Ray start takes seconds on two cores.
    ray.init(num_cpus=2, resources={"brick:GRAYSCALE": 1, "brick:FLIP": 1}, include_dashboard=False,
             namespace="prefect", log_to_driver=False)
    yield
    ray.shutdown()


def test_flow_runs_on_a_ray_cluster_with_brick_resources(tmp_path, ray_cluster, monkeypatch):
    from prefect_ray.context import RemoteOptionsContext

    submitted = []
    submit = prefect_ray.RayTaskRunner.submit

    def recording_submit(self, task, *args, **kwargs):
        submitted.append((task.name, dict(RemoteOptionsContext.get().current_remote_options)))
        return submit(self, task, *args, **kwargs)

    monkeypatch.setattr(prefect_ray.RayTaskRunner, "submit", recording_submit)
    manifest = write_catalogue(str(tmp_path / "in"), 6, ["make it black and white", "flip it"])
    with prefect_test_harness(server_startup_timeout=180):
        config = Config.load(overrides=["pipeline.task_runner='ray'", "pipeline.shard_size=3",
                                        "pipeline.ray_brick_resources=true"])
        summary = run_catalogue(manifest, str(tmp_path / "out"), config=config, report=False)
    assert summary["counts"] == {"ok": 6}
    rows = RunOutput(str(tmp_path / "out")).read_table().to_pylist()
    assert [row["id"] for row in rows] == [f"item-{i:05d}" for i in range(6)]
    assert {tuple(node["tool"] for node in row["trace"]) for row in rows} == {("GRAYSCALE",), ("FLIP",)}
    brick_options = [options for name, options in submitted if name == "run-brick-groups"]
    # Both shards hold GRAYSCALE and FLIP items: one group of each per shard, each asking for its brick's resource.
    assert sorted(str(options["resources"]) for options in brick_options) == [
        "{'brick:FLIP': 1}", "{'brick:FLIP': 1}", "{'brick:GRAYSCALE': 1}", "{'brick:GRAYSCALE': 1}"]
    assert all(options["num_gpus"] == 0 and options["max_calls"] == 0 for options in brick_options)
    assert all(options == {} for name, options in submitted if name != "run-brick-groups")


def _flow_run_states() -> list[tuple[str, str]]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [(run.state_type.value, run.state.message or "") for run in client.read_flow_runs()]


def test_a_brick_no_ray_node_has_fails_the_flow_with_its_name_instead_of_waiting(tmp_path, ray_cluster):
    # SHARPEN's groups ask for brick:SHARPEN, which the one node does not advertise
    manifest = write_catalogue(str(tmp_path / "in"), 2, ["sharpen the image"])
    with prefect_test_harness(server_startup_timeout=180):
        with pytest.raises(Exception, match=r"no Ray node has brick:SHARPEN \(of 1 live node\(s\)\)"):
            config = Config.load(overrides=["pipeline.task_runner='ray'", "pipeline.shard_size=2",
                                            "pipeline.ray_brick_resources=true"])
            run_catalogue(manifest, str(tmp_path / "out"), config=config, report=False)
        assert [state for state, _ in _flow_run_states()] == ["FAILED"]
    assert not list((tmp_path / "out").rglob("_commits/*.json"))  # nothing committed


def test_a_ray_cluster_that_refuses_the_connection_fails_the_flow_run(tmp_path):
    manifest = write_catalogue(str(tmp_path / "in"), 2, ["flip it"])
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        with prefect_test_harness(server_startup_timeout=180):
            with pytest.raises(ClusterUnavailable, match=f"cannot connect to ray://127.0.0.1:{port}: 127.0.0.1:{port}"):
                config = Config.load(overrides=["pipeline.task_runner='ray'", "pipeline.shard_size=2",
                                                f"pipeline.address='ray://127.0.0.1:{port}'"])
                run_catalogue(manifest, str(tmp_path / "out"), config=config, report=False)
            [(state, message)] = _flow_run_states()
    assert state == "FAILED" and "cannot connect" in message
