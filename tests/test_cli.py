"""The command line: the catalogue listing, validation exit codes, and option precedence."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from legoedit.cli import UsageError, build_parser, main, run_config
from legoedit_core.data.synthetic import write_catalogue


def test_bricks_lists_every_brick_with_ports_and_backends(capsys):
    assert main(["bricks"]) == 0
    listing = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in listing[1:]}
    assert {"RES", "SOS", "MASK-SEG", "ADD-PRED", "CAP-PRED", "BBOX", "INVERSE", "FASTINPAINT", "INPAINT", "FILL",
            "RCM", "ENV", "POSE", "STYLE", "CBG", "COMPOSE", "RESIZE", "EDIT", "CROP", "BLUR"} <= set(rows)
    assert "image: Image, prompt: Text" in rows["RES"] and "classical [cpu]" in rows["RES"]
    assert "unavailable: FILL is not available on the cpu profile" in rows["FILL"]


def test_bricks_schema_is_json(capsys):
    assert main(["bricks", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    tools = {node["properties"]["tool"]["const"] for node in schema["properties"]["nodes"]["items"]["anyOf"]}
    assert "INPAINT" in tools and "FILL" not in tools


def test_validate_lists_five_mistakes_with_node_ids_and_exits_1(tmp_path, capsys):
    workflow = tmp_path / "broken.json"
    workflow.write_text(json.dumps({
        "nodes": [
            {"id": "seg", "tool": "RES", "inputs": {"image": "@input.image"}},
            {"id": "erase", "tool": "INPAINT", "inputs": {"image": "@seg.mask", "mask": "@seg.mask", "strength": 3}},
            {"id": "paint", "tool": "RCM", "inputs": {"image": "@erase.image", "mask": "@sky.mask", "prompt": "red",
                                                      "hue": 4}},
            {"id": "magic", "tool": "SPARKLE", "inputs": {}},
        ],
        "output": "@paint.image",
    }))
    assert main(["validate", str(workflow)]) == 1
    out = capsys.readouterr().out
    for line in ("seg: missing required input 'prompt'",
                 "erase: input 'image': type mismatch: @seg.mask is a Mask",
                 "erase: input 'strength': 3 is out of range [0.05, 1]",
                 "paint: input 'mask': dangling reference @sky.mask",
                 "paint: RCM has no input 'hue'",
                 "magic: unknown tool 'SPARKLE'"):
        assert line in out, (line, out)
    assert "6 problem(s)" in out


def test_validate_accepts_a_good_workflow(tmp_path, capsys):
    workflow = tmp_path / "good.json"
    workflow.write_text(json.dumps({"nodes": [{"id": "g", "tool": "GRAYSCALE", "inputs": {"image": "@input.image"}}],
                                    "output": "@g.image"}))
    assert main(["validate", str(workflow)]) == 0
    assert "valid" in capsys.readouterr().out


def test_run_workflow_reports_unreadable_input_with_exit_2(tmp_path, capsys):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "w.json").write_text('{"nodes": [], "output": "@x.image"}')
    assert main(["run-workflow", str(tmp_path / "empty.png"), str(tmp_path / "w.json"), "-o", "x.png"]) == 2
    assert "empty file" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["run", "in.jsonl", "out"], ["rollouts", "in.jsonl", "out"],
                                     ["eval", "bench", "out"]], ids=["run", "rollouts", "eval"])
def test_pipeline_options_come_from_the_config_unless_given(tmp_path, command):
    """Every flow command's run parameters are one config: its file, with the command line's options on top."""
    config_file = tmp_path / "run.toml"
    config_file.write_text("[pipeline]\nshard_size = 16\nmax_concurrent_shards = 3\nwrite_images = true\n"
                           "[judge]\nmodel = \"my-judge\"\n")
    args = build_parser().parse_args(command + ["--config", str(config_file), "--shard-size", "8"])
    config = run_config(args)
    pipeline = config.pipeline
    assert (pipeline.shard_size, pipeline.max_concurrent_shards, pipeline.task_runner) == (8, 3, "threads")
    assert pipeline.write_images and config.judge.model == "my-judge"  # a flag left out keeps the config's value
    args = build_parser().parse_args(command + ["--config", str(config_file), "--concurrent-shards", "1"])
    assert (run_config(args).pipeline.shard_size, run_config(args).pipeline.max_concurrent_shards) == (16, 1)


def test_flow_commands_give_prefects_local_server_time_to_start_and_batched_writes():
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as TIMEOUT
    from prefect.settings import PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE as BATCH
    from prefect.settings import temporary_settings

    from flows.server import EPHEMERAL_STARTUP_SECONDS, RECORDER_BATCH, local_server_settings

    with local_server_settings():
        assert TIMEOUT.value() == EPHEMERAL_STARTUP_SECONDS > 20  # Prefect's default is 20 s
        assert BATCH.value() == RECORDER_BATCH > 1  # Prefect's default writes task runs one at a time
    with temporary_settings({TIMEOUT: 7, BATCH: 3}), local_server_settings():
        assert (TIMEOUT.value(), BATCH.value()) == (7, 3)  # the user's own settings win


def test_the_temporary_server_sends_no_telemetry_unless_asked():
    from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED as ANALYTICS
    from prefect.settings import temporary_settings

    from flows.server import local_server_settings

    with local_server_settings():
        assert ANALYTICS.value() is False
    with temporary_settings({ANALYTICS: True}), local_server_settings():
        assert ANALYTICS.value() is True


def test_flow_runs_send_no_heartbeats_to_a_temporary_server_unless_the_user_asked():
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY as HEARTBEAT
    from prefect.settings import temporary_settings

    from flows.server import local_client_settings

    assert HEARTBEAT.value() is not None  # Prefect's default (180 s): a thread every flow run waits for at its end
    with local_client_settings("http://127.0.0.1:1/api"):
        assert HEARTBEAT.value() is None
    with temporary_settings({HEARTBEAT: 60}), local_client_settings("http://127.0.0.1:1/api"):
        assert HEARTBEAT.value() == 60


def test_the_temporary_server_declines_compressing_the_events_websocket(tmp_path):
    from prefect.events.clients import events_in_socket_from_api_url
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
    from websockets.sync.client import connect

    from flows.server import temporary_server

    with temporary_settings({PREFECT_HOME: str(tmp_path), PREFECT_API_URL: None}), temporary_server():
        # a client offers per-message deflate, as Prefect's events client does; over loopback it only costs CPU
        socket = connect(events_in_socket_from_api_url(PREFECT_API_URL.value()), subprotocols=["prefect"])
        offered, accepted = socket.request.headers["Sec-WebSocket-Extensions"], socket.protocol.extensions
        socket.close()
    assert offered.startswith("permessage-deflate") and accepted == []


# ------------------------------------------------------------------------------------------- one line per error
def legoedit(*args: str, env: dict | None = None, **options) -> subprocess.CompletedProcess:
    """The real command in a fresh process (Prefect's own temporary server, nothing from the tests)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | (env or {})
    return subprocess.run([sys.executable, "-c", "import sys; from legoedit.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, env=environment, timeout=300, **options)


def test_a_run_on_a_missing_dataset_says_so_in_one_line_without_telemetry_errors(tmp_path):
    done = legoedit("run", str(tmp_path / "nope.jsonl"), str(tmp_path / "out"),
                    env={"PREFECT_HOME": str(tmp_path / "prefect")})
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"error: dataset manifest {tmp_path / 'nope.jsonl'} does not exist"], done.stderr
    assert "Traceback" not in done.stderr and "telemetry" not in done.stderr


def test_debug_shows_the_traceback_instead(tmp_path, capsys):
    assert main(["bricks", "--config", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err == f"error: config: {tmp_path / 'nope.toml'}: No such file or directory\n"
    with pytest.raises(UsageError, match="nope.toml"):
        main(["bricks", "--config", str(tmp_path / "nope.toml"), "--debug"])
    with pytest.raises(UsageError, match="nope.toml"):
        main(["--debug", "bricks", "--config", str(tmp_path / "nope.toml")])


def test_a_config_mistake_is_a_usage_error(capsys):
    assert main(["bricks", "--set", "pipeline.shard_size=0"]) == 2
    assert capsys.readouterr().err == "error: config: pipeline.shard_size: Input should be greater than or equal to 1\n"


def test_a_closed_pipe_ends_quietly():
    process = subprocess.Popen([sys.executable, "-c", "import sys; from legoedit.cli import main; sys.exit(main())",
                                "bricks", "--schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first line is written, as with `| head` at once
    stderr = process.stderr.read()
    assert process.wait(120) == 0 and stderr == b""


def test_run_workflow_creates_the_folders_of_its_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    examples = Path(__file__).resolve().parents[1] / "examples"
    code = main(["run-workflow", str(examples / "images" / "coffee.jpg"),
                 str(examples / "workflows" / "coffee_blur_background.json"), "-o", "out/edited/coffee.png",
                 "--trace", "out/trace.json"])
    assert code == 0
    assert json.loads((tmp_path / "out" / "trace.json").read_text())["status"] == "ok"
    assert (tmp_path / "out" / "edited" / "coffee.png").read_bytes().startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def prefect_api():
    """A temporary Prefect server shared by the commands of these tests (each command is its own process)."""
    from prefect.settings import PREFECT_API_URL

    with prefect_test_harness(server_startup_timeout=180):
        yield {"PREFECT_API_URL": PREFECT_API_URL.value()}


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The command's own message: exit status 1, exactly one ``error:`` line and no traceback."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_an_object_store_that_is_down_at_the_start_is_one_line(tmp_path, prefect_api):
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = prefect_api | {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                         "LEGOEDIT_STORAGE_ATTEMPTS": "2", "LEGOEDIT_STORAGE_WAIT": "0.05"}
    line = one_error_line(legoedit("run", "s3://catalogue/rows.jsonl", str(tmp_path / "out"), env=env))
    assert line.startswith("error: object store: read catalogue/rows.jsonl failed after 2 attempt(s): "), line
    assert endpoint in line


@pytest.mark.slow
def test_legoedit_ui_serves_the_finished_run_at_the_link_the_run_printed(tmp_path):
    """The run's temporary server is gone when it ends; ``legoedit ui`` serves the same database where the run's
    "View at" link points."""
    import re
    import signal
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_API_PORT": str(port)}
    catalogue = write_catalogue(str(tmp_path / "in"), 1, ["flip it"])
    done = legoedit("run", catalogue, str(tmp_path / "out"), env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    link = re.search(r"View at (http://\S+/runs/flow-run/([0-9a-f-]+))", done.stdout + done.stderr)
    assert link and link.group(1).startswith(f"http://127.0.0.1:{port}/"), done.stderr[-3000:]
    assert "legoedit ui" in done.stderr
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | env
    ui = subprocess.Popen([sys.executable, "-m", "legoedit.cli", "ui"], env=environment, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline, answer = time.monotonic() + 180, None
        while answer is None and time.monotonic() < deadline:
            assert ui.poll() is None, ui.stderr.read().decode()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/flow_runs/{link.group(2)}", timeout=5)
            except httpx.TransportError:
                time.sleep(0.5)
        assert answer is not None and answer.status_code == 200, answer
        assert answer.json()["state"]["type"] == "COMPLETED"
        page = httpx.get(link.group(1), headers={"Accept": "text/html"}, timeout=30)  # as a browser asks for it
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(30)
