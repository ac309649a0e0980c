"""The command line: the catalogue listing, validation exit codes, and option precedence."""

from __future__ import annotations

import json

from legoedit.cli import build_parser, load_config, main, pipeline_settings


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


def test_pipeline_options_come_from_the_config_unless_given(tmp_path):
    config_file = tmp_path / "run.toml"
    config_file.write_text("[pipeline]\nshard_size = 16\nmax_concurrent_shards = 3\n")
    args = build_parser().parse_args(["run", "in.jsonl", "out", "--config", str(config_file), "--shard-size", "8"])
    pipeline = pipeline_settings(args, load_config(args))
    assert (pipeline.shard_size, pipeline.max_concurrent_shards, pipeline.task_runner) == (8, 3, "threads")


def test_flow_commands_give_prefects_local_server_time_to_start():
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as TIMEOUT
    from prefect.settings import temporary_settings

    from flows.server import EPHEMERAL_STARTUP_SECONDS, patient_ephemeral_server

    with patient_ephemeral_server():
        assert TIMEOUT.value() == EPHEMERAL_STARTUP_SECONDS > 20  # Prefect's default is 20 s
    with temporary_settings({TIMEOUT: 7}), patient_ephemeral_server():
        assert TIMEOUT.value() == 7  # the user's own setting wins
