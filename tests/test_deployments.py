"""Deployments as a user runs them: a real Prefect server (SQLite) on loopback, ``prefect deploy`` of
``deployments/prefect.yaml`` to process work pools with workers, and ``deployments/serve.py``; a run triggered with
parameters completes, and an interval schedule fires at least twice.

The test copy of prefect.yaml differs from the real one only where a test must: the scheduled deployment's
dataset, output and profile point at a tiny local catalogue on the CPU profile, and its cron is a short interval.
Every wait is bounded and every process started here is killed (with the flow runs it started) at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.version import Version
from test_pipeline import FlakyProxy, make_bucket, moto_server, s3_options  # noqa: F401 (moto_server: a fixture)

from legoedit_core.data.output import RunOutput
from legoedit_core.data.synthetic import write_catalogue

REPO = Path(__file__).resolve().parents[1]
PREFECT_FILE = REPO / "deployments" / "prefect.yaml"
PREFECT = str(Path(sys.executable).with_name("prefect"))
INTERVAL_SECONDS = 3
FLOW = "edit-catalogue"


def test_installed_fastapi_and_sqlalchemy_are_ones_prefect_works_with():
    # fastapi >= 0.151 answers 422 to Prefect 3.8.8's worker filter (limit: null); SQLAlchemy 2.1 breaks the
    # scheduler's bulk insert of scheduled runs. pyproject.toml pins both; the tests below show them working.
    assert Version(version("prefect")) == Version("3.8.8")
    assert Version(version("fastapi")) < Version("0.151")
    assert Version(version("sqlalchemy")) < Version("2.1")


def test_served_deployments_are_the_yaml_ones_under_their_own_names(monkeypatch):
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "deployments"))
    try:
        from serve import SERVED_SUFFIX, served_deployments
    finally:
        sys.path.remove(str(REPO / "deployments"))
    declared = yaml.safe_load(PREFECT_FILE.read_text())["deployments"]
    served = served_deployments()
    assert [d.name for d in served] == [entry["name"] + SERVED_SUFFIX for entry in declared]
    for entry, deployment in zip(declared, served, strict=True):
        assert deployment.entrypoint == entry["entrypoint"]
        assert deployment.parameters == entry["parameters"]
        assert deployment.description == entry["description"]
        assert [s.schedule.cron for s in deployment.schedules] == [s["cron"] for s in entry.get("schedules", [])]
    # run settings live in the flow's config (config.pipeline), as the flows read them
    assert all(set(entry["parameters"]) <= {"dataset", "output", "config"} for entry in declared)


class Processes:
    """Processes started by a test, each in its own process group, all killed (children too) by ``stop``."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.started.append((process, log))
        return process

    def tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.started)

    def stop(self) -> None:
        for process, _ in self.started:
            _signal_group(process, signal.SIGTERM)
        for process, _ in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            _signal_group(process, signal.SIGKILL)  # whatever it left behind (flow-run processes) goes too
            process.wait(timeout=10)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _wait(condition: Callable[[], Any], timeout: float, what: str, processes: Processes) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout:.0f} s\n{processes.tails()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A Prefect server on a free loopback port, SQLite in a fresh PREFECT_HOME, scheduler every second."""
    root = tmp_path_factory.mktemp("prefect")
    processes = Processes(root)
    port = _free_port()
    server_env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"} | {
        "PREFECT_HOME": str(root / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1"}
    process = processes.start("server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              server_env)
    api = f"http://127.0.0.1:{port}/api"
    http = httpx.Client(base_url=api, timeout=30, transport=RetryWhileBusy())

    def healthy() -> bool:
        assert process.poll() is None, f"the Prefect server exited\n{processes.tails()}"
        try:
            return http.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait(healthy, 120, "the Prefect server answering", processes)
        # what each flow-run process needs (flows/environment.py), and quick polling for a quick test
        client_env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")} | {
            "PREFECT_API_URL": api, "PREFECT_HOME": str(root / "client-home"), "LEGOEDIT_HOME": str(REPO),
            "PYTHONPATH": str(REPO), "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
        yield {"http": http, "env": client_env, "root": root}
    finally:
        http.close()
        processes.stop()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> str:
    return write_catalogue(str(tmp_path_factory.mktemp("catalogue")), 2, ["make it black and white", "flip it"])


@pytest.fixture
def processes(tmp_path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop()


def _test_prefect_file(folder: Path, catalogue: str) -> Path:
    """prefect.yaml with its scheduled deployments on the tiny catalogue, CPU profile and a short interval."""
    spec = yaml.safe_load(PREFECT_FILE.read_text())
    for entry in spec["deployments"]:
        if entry.get("schedules"):
            entry["schedules"] = [{"interval": INTERVAL_SECONDS}]
            entry["parameters"].update(dataset=catalogue, output=str(folder / entry["name"]))
            entry["parameters"]["config"]["profile"] = "cpu"
            entry["parameters"]["config"]["pipeline"]["write_images"] = False
    path = folder / "prefect.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _command(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([PREFECT, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"prefect {' '.join(args)}: {done.stdout[-3000:]}{done.stderr[-3000:]}"


class RetryWhileBusy(httpx.HTTPTransport):
    """A SQLite Prefect server under load answers 503 while its database is locked, or not within the timeout;
    Prefect's own client retries that, and so does the test's client (a few times, with growing waits; a timed-out
    request only where asking again changes nothing: reads and filters)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for wait in (0.5, 1, 2, 4, 8):
            try:
                response = super().handle_request(request)
            except httpx.TimeoutException:
                if request.method != "GET" and not request.url.path.endswith("/filter"):
                    raise
                continue
            if response.status_code != 503:
                return response
            response.close()
            time.sleep(wait)
        return super().handle_request(request)


def _deployment(http: httpx.Client, name: str) -> dict[str, Any]:
    answer = http.get(f"/deployments/name/{FLOW}/{name}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _state(http: httpx.Client, run_id: str, processes: Processes) -> str | None:
    """The run's final state type, or None while it is not final; a failed run fails the test with its message."""
    state = http.get(f"/flow_runs/{run_id}").json()["state"]
    assert state["type"] not in {"FAILED", "CRASHED", "CANCELLED"}, f"{state}\n{processes.tails()}"
    return state["type"] if state["type"] == "COMPLETED" else None


def _runs_completed_on_schedule(http: httpx.Client, deployment_id: str, processes: Processes) -> int:
    runs = http.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}}).json()
    for run in runs:
        assert run["state_type"] not in {"FAILED", "CRASHED"}, f"{run['state']}\n{processes.tails()}"
    return sum(1 for run in runs if run["auto_scheduled"] and run["state_type"] == "COMPLETED")


def _trigger_and_see_it_work(server: dict[str, Any], processes: Processes, on_demand: str, nightly: str,
                             catalogue: str, output: Path) -> None:
    http = server["http"]
    deployment = _deployment(http, on_demand)
    parameters = {"dataset": catalogue, "output": str(output),
                  "config": {"profile": "cpu", "pipeline": {"shard_size": 1}}}
    run = http.post(f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters})
    assert run.status_code == 201, run.text
    _wait(lambda: _state(http, run.json()["id"], processes), 240, f"{on_demand} run Completed", processes)
    rows = RunOutput(str(output)).read_table().to_pylist()
    assert sorted((row["id"], row["status"]) for row in rows) == [("item-00000", "ok"), ("item-00001", "ok")]

    scheduled = _deployment(http, nightly)
    assert [s["schedule"]["interval"] for s in scheduled["schedules"]] == [INTERVAL_SECONDS]
    _wait(lambda: _runs_completed_on_schedule(http, scheduled["id"], processes) >= 2, 300,
          f"two scheduled {nightly} runs Completed", processes)


@pytest.fixture(scope="module")
def deployed(server, catalogue, tmp_path_factory) -> None:
    """The process work pools, and prefect.yaml (its test copy) deployed to them as the file's header says."""
    env = server["env"]
    # Prefect's client sends limit: null here; Prefect 3.8.8 on fastapi >= 0.151 answers 422 (checked: 0.150 200,
    # 0.151 422), and `prefect deploy` fails with it
    unlimited = {"limit": None, "offset": None}
    assert server["http"].post("/work_pools/legoedit-cpu/workers/filter", json=unlimited).status_code == 404
    for pool in ("legoedit-cpu", "legoedit-gpu"):
        _command(env, "work-pool", "create", pool, "--type", "process")
    assert server["http"].post("/work_pools/legoedit-cpu/workers/filter", json=unlimited).status_code == 200
    _command(env, "--no-prompt", "deploy", "--all", "--prefect-file",
             str(_test_prefect_file(tmp_path_factory.mktemp("deployed"), catalogue)))


@pytest.mark.slow
def test_prefect_yaml_deploys_to_process_pools_and_workers_run_it(server, deployed, catalogue, processes, tmp_path):
    for pool in ("legoedit-cpu", "legoedit-gpu"):
        processes.start(f"worker-{pool}", [PREFECT, "worker", "start", "--pool", pool], server["env"])
    _trigger_and_see_it_work(server, processes, "on-demand", "nightly-bulk-edit", catalogue, tmp_path / "triggered")


@pytest.mark.slow
def test_serve_py_serves_the_same_deployments_and_runs_them(server, deployed, catalogue, processes, tmp_path):
    prefect_file = _test_prefect_file(tmp_path, catalogue)
    processes.start("serve", [sys.executable, str(REPO / "deployments" / "serve.py"), str(prefect_file)],
                    server["env"])
    http = server["http"]
    _wait(lambda: http.get(f"/deployments/name/{FLOW}/on-demand-served").status_code == 200, 120,
          "serve.py registering its deployments", processes)
    _trigger_and_see_it_work(server, processes, "on-demand-served", "nightly-bulk-edit-served", catalogue,
                             tmp_path / "triggered")
    # the same settings as the deployed ones (where the test ran them), under other names
    for name in ("on-demand", "nightly-bulk-edit"):
        deployed = _deployment(http, name)
        served = _deployment(http, name + "-served")
        for key in ("entrypoint", "description", "concurrency_limit", "tags"):
            assert served[key] == deployed[key], key
        assert [s["schedule"].get("interval") for s in served["schedules"]] == [
            s["schedule"].get("interval") for s in deployed["schedules"]]
        served_output, deployed_output = (d["parameters"].pop("output", "") for d in (served, deployed))
        assert served["parameters"] == deployed["parameters"]  # the tests' outputs differ, in name only
        assert Path(served_output).name == Path(deployed_output).name


def test_a_flow_run_without_legoedit_home_fails_with_one_clear_line(monkeypatch):
    from flows.environment import MissingEnvironment, require_environment

    monkeypatch.delenv("LEGOEDIT_HOME", raising=False)
    with pytest.raises(MissingEnvironment, match="LEGOEDIT_HOME is not set: it must name the legoedit checkout"):
        require_environment()
    monkeypatch.setenv("LEGOEDIT_HOME", "/nonexistent")
    with pytest.raises(MissingEnvironment, match="LEGOEDIT_HOME=/nonexistent holds no flows/edit_catalogue.py"):
        require_environment()
    monkeypatch.setenv("LEGOEDIT_HOME", str(REPO))
    assert require_environment() == {"LEGOEDIT_HOME": str(REPO)}


def test_prefect_yaml_pull_steps_check_the_environment_first(server, deployed, monkeypatch, tmp_path):
    """The pull steps as a worker's flow-run process runs them: the check fails first, with its message, and the
    flow run is Failed with it (what the UI shows)."""
    import asyncio

    from prefect.deployments.steps.core import run_steps
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.environment import MissingEnvironment

    pull = yaml.safe_load(PREFECT_FILE.read_text())["pull"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEGOEDIT_HOME", raising=False)
    run_id = _run_deployment(server["http"], "on-demand", {"dataset": "unused.jsonl", "output": str(tmp_path)})
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", run_id)  # as a worker starts the flow-run process
    with temporary_settings({PREFECT_API_URL: server["env"]["PREFECT_API_URL"]}):  # where the steps' events go
        with pytest.raises(Exception, match="while running flows.environment.require_environment") as failure:
            asyncio.run(run_steps(pull))
        cause = failure.value.__cause__
        assert isinstance(cause, MissingEnvironment) and str(cause).startswith("LEGOEDIT_HOME is not set: it must")
        state = server["http"].get(f"/flow_runs/{run_id}").json()["state"]
        assert state["type"] == "FAILED" and state["message"] == str(cause)
        monkeypatch.setenv("LEGOEDIT_HOME", str(REPO))
        asyncio.run(run_steps(pull))
    assert Path.cwd() == REPO  # the flow runs from the checkout, where its entrypoint is


# ------------------------------------------------------------------ the on-demand deployment: preflight, runner, stop
def _run_deployment(http: httpx.Client, name: str, parameters: dict[str, Any]) -> str:
    run = http.post(f"/deployments/{_deployment(http, name)['id']}/create_flow_run", json={"parameters": parameters})
    assert run.status_code == 201, run.text
    return run.json()["id"]


def _final_state(http: httpx.Client, run_id: str) -> dict[str, Any] | None:
    state = http.get(f"/flow_runs/{run_id}").json()["state"]
    return state if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None


def _log_lines(http: httpx.Client, run_id: str) -> list[str]:
    logs = http.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC"})
    return [entry["message"] for entry in logs.json()]


def _log_naming(http: httpx.Client, run_id: str, text: str) -> str | None:
    """The run's whole log once a line of it contains ``text``."""
    log = "\n".join(_log_lines(http, run_id))
    return log if text in log else None


@pytest.fixture(scope="module")
def cpu_worker(server, deployed, tmp_path_factory) -> Iterator[Processes]:
    """One process worker on the CPU pool for the on-demand tests below, in an environment where botocore finds no
    credentials (none set, no files, no instance metadata): a run that needs S3 passes its storage_options."""
    folder = tmp_path_factory.mktemp("worker")
    env = {key: value for key, value in server["env"].items() if not key.startswith("AWS_")} | {
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-credentials"), "AWS_CONFIG_FILE": str(folder / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true"}
    started = Processes(folder)
    started.start("worker", [PREFECT, "worker", "start", "--pool", "legoedit-cpu"], env)
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.slow
def test_on_demand_runs_with_bad_inputs_end_failed_in_one_line_and_write_nothing(server, catalogue, cpu_worker,
                                                                                  tmp_path):
    """(a) no instruction column, (b) a misspelt brick key, (c) an unwritable output, (d) an S3 dataset without
    credentials: each run ends Failed, its state message and its log name the cause in one line, no traceback, and
    nothing is written."""
    http, processes = server["http"], cpu_worker
    no_instruction = tmp_path / "no-instruction.jsonl"
    no_instruction.write_text('{"id": "r0", "image": "a.png", "prompt": "flip it"}\n')
    cpu = {"profile": "cpu"}
    cases = {
        "no instruction column": ({"dataset": str(no_instruction), "output": str(tmp_path / "a"), "config": cpu},
                                  f"{no_instruction}: no row has 'instruction': every row would be bad_input"),
        "misspelt brick key": ({"dataset": catalogue, "output": str(tmp_path / "b"),
                                "config": cpu | {"bricks": {"INPAINT": {"stepz": 20}}}},
                               "config: bricks.INPAINT.stepz: not a setting of any INPAINT backend (did you mean "
                               "steps?)"),
        "unwritable output": ({"dataset": catalogue, "output": "/proc/out", "config": cpu},
                              "cannot write the output /proc/out (its folder /proc cannot hold new files)"),
        "S3 without credentials": ({"dataset": "s3://catalogue/incoming/catalogue.jsonl",
                                    "output": str(tmp_path / "d"), "config": cpu},
                                   "no S3 credentials for the dataset s3://catalogue/incoming/catalogue.jsonl"),
    }
    runs = {case: _run_deployment(http, "on-demand", parameters) for case, (parameters, _) in cases.items()}
    for case, run_id in runs.items():
        state = _wait(lambda run_id=run_id: _final_state(http, run_id), 240, f"the {case} run ending", processes)
        cause = cases[case][1]
        assert state["type"] == "FAILED", (case, state)
        assert state["message"].startswith(cause) and "\n" not in state["message"], (case, state["message"])
        # the run's log reaches the server shortly after its state; the process has exited by then
        logs = _wait(lambda run_id=run_id, cause=cause: _log_naming(http, run_id, cause), 60, f"the {case} log",
                     processes)
        assert "Traceback" not in logs and "exited with unexpected exception" not in logs, (case, logs)
    for case in ("a", "b", "d"):
        assert not (tmp_path / case).exists()


@pytest.mark.slow
def test_on_demand_run_with_task_runner_dask_runs_on_the_dask_cluster(server, catalogue, cpu_worker, tmp_path):
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    http, processes = server["http"], cpu_worker
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:  # reachable from the run
        config = {"profile": "cpu", "pipeline": {"shard_size": 1, "task_runner": "dask",
                                                 "address": cluster.scheduler_address}}
        run_id = _run_deployment(http, "on-demand", {"dataset": catalogue, "output": str(tmp_path / "out"),
                                                     "config": config})
        _wait(lambda: _state(http, run_id, processes), 240, "the Dask run Completed", processes)
        ran_on_the_cluster = {key.split("-")[0] for key in cluster.scheduler.task_prefixes}
    rows = RunOutput(str(tmp_path / "out")).read_table().to_pylist()
    assert sorted((row["id"], row["status"]) for row in rows) == [("item-00000", "ok"), ("item-00001", "ok")]
    assert ran_on_the_cluster, "no task reached the Dask cluster"
    subflows = http.post("/flow_runs/filter", json={"flow_runs": {"parent_task_run_id": {"is_null_": False}}}).json()
    assert any(_log_lines(http, subflow["id"]) for subflow in subflows)
    assert "config.pipeline.task_runner is dask: running on it as a subflow at " in "\n".join(_log_lines(http, run_id))


@pytest.mark.slow
def test_cancelling_a_running_deployment_run_stops_it_cleanly_and_a_rerun_does_each_row_once(
        server, moto_server, cpu_worker, tmp_path):  # noqa: F811
    """Cancelled from the API (as the UI's Cancel does) while its dataset's store holds every request, so that the
    run cannot finish first: the worker's SIGTERM stops it between shards, Cancelled, whole shards committed, the
    output's lease released; the rerun completes with each row once."""
    http, processes = server["http"], cpu_worker
    make_bucket(moto_server, "cancel")
    store = FlakyProxy(moto_server)
    options = s3_options(store.url)
    manifest = write_catalogue("s3://cancel/in", 20, ["make it black and white and then flip it"],
                               storage_options=options)
    output = tmp_path / "out"
    parameters = {"dataset": manifest, "output": str(output), "storage_options": options,
                  "config": {"profile": "cpu", "pipeline": {"shard_size": 2, "max_concurrent_shards": 1}}}
    run_id = _run_deployment(http, "on-demand", parameters)
    _wait(lambda: glob.glob(str(output / "work" / "*" / "_commits" / "*.json")), 240, "a first shard committed",
          processes)
    store.open.clear()  # the run stands still: its next reads wait
    try:
        cancel = http.post(f"/flow_runs/{run_id}/set_state", json={"state": {"type": "CANCELLING"}})
        assert cancel.status_code in (200, 201), cancel.text
        state = _wait(lambda: _final_state(http, run_id), 120, "the cancelled run ending", processes)
    finally:
        store.open.set()
    assert state["type"] == "CANCELLED", state
    work = Path(glob.glob(str(output / "work" / "*"))[0])
    assert 0 < len(RunOutput(str(work)).finished()) < 10  # stopped between shards, whole shards committed
    assert _wait(lambda: _log_naming(http, run_id, "stopped by a signal"), 60, "the stop's log line", processes)

    rerun = _run_deployment(http, "on-demand", parameters)
    _wait(lambda: _state(http, rerun, processes), 240, "the rerun Completed", processes)
    ids = [row["id"] for row in RunOutput(str(output)).read_table().to_pylist()]
    assert sorted(ids) == [f"item-{i:05d}" for i in range(20)]  # each row once
    store.shutdown()
