"""The CLI refuses what cannot work before any Prefect server starts: a config key (bricks included) that nothing
reads, a dataset that does not exist or lacks a required column; and a run whose every row is bad_input exits 1."""

from __future__ import annotations

import json

import pytest
from prefect.testing.utilities import prefect_test_harness

import flows.server
from legoedit.cli import main
from legoedit_core.bricks.settings_check import brick_settings_problems
from legoedit_core.config import Config
from legoedit_core.data.synthetic import write_catalogue


@pytest.fixture
def no_server(monkeypatch):
    def refuse():
        raise AssertionError("a server was started for a run that should have been refused first")

    monkeypatch.setattr(flows.server, "temporary_server", refuse)


@pytest.fixture
def catalogue(tmp_path) -> str:
    return write_catalogue(str(tmp_path / "in"), 2, ["make it black and white"])


@pytest.mark.parametrize(("override", "message"), [
    ("bricks.INPAINT.stepz=20",
     "error: config: bricks.INPAINT.stepz: not a setting of any INPAINT backend (did you mean steps?) (known: "),
    ("bricks.INPANT.steps=20", "error: config: bricks.INPANT: no such brick (did you mean INPAINT?)\n"),
    ("bricks.INPAINT.flux-fill.stepz=20",
     "error: config: bricks.INPAINT.flux-fill.stepz: not a setting of backend flux-fill (did you mean steps?)"),
    ("pipeline.shard_sise=3", "error: config: pipeline.shard_sise: Extra inputs are not permitted\n"),
])
def test_an_unknown_set_key_is_refused_before_a_server_starts(override, message, catalogue, tmp_path, capsys,
                                                              no_server):
    assert main(["run", catalogue, str(tmp_path / "out"), "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_every_known_brick_setting_is_accepted():
    assert brick_settings_problems(Config.load(None, ['profile="gpu"'])) == []  # the GPU profile's own keys
    accepted = ["bricks.INPAINT.steps=20", "bricks.INPAINT.max_fraction=0.3", "bricks.INPAINT.backend=\"opencv\"",
                "bricks.EDIT.flux-kontext.max_sequence_length=256", "bricks.RES.grounded-sam.box_threshold=0.2"]
    assert brick_settings_problems(Config.load(None, accepted)) == []


def test_a_missing_config_file_is_refused_before_a_server_starts(catalogue, tmp_path, capsys, no_server):
    assert main(["run", catalogue, str(tmp_path / "out"), "--config", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err == f"error: config: {tmp_path / 'nope.toml'}: No such file or directory\n"


def test_a_missing_dataset_is_refused_before_a_server_starts(tmp_path, capsys, no_server):
    assert main(["run", str(tmp_path / "catalgue.jsonl"), str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == f"error: dataset manifest {tmp_path / 'catalgue.jsonl'} does not exist\n"


@pytest.mark.parametrize("command", ["run", "rollouts"])
def test_a_dataset_without_an_instruction_column_is_refused_before_a_server_starts(command, tmp_path, capsys,
                                                                                   no_server):
    manifest = tmp_path / "catalogue.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"r{i}", "image": "a.png", "prompt": "flip it"}) + "\n"
                                for i in range(3)))
    assert main([command, str(manifest), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"error: {manifest}: no row has 'instruction': every row would be "
                                       "bad_input\n")


def test_a_run_whose_every_row_is_bad_input_exits_1_with_one_line(tmp_path, capsys):
    manifest = tmp_path / "catalogue.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"r{i}", "image": f"missing-{i}.png", "instruction": "flip it"})
                                + "\n" for i in range(2)))
    with prefect_test_harness(server_startup_timeout=180):
        code = main(["run", str(manifest), str(tmp_path / "out"), "--shard-size", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert "rows by status: {'bad_input': 2}" in captured.out
    errors = captured.err.splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: every row is bad_input (e.g. "), captured.err
    assert "missing-0.png" in errors[0] and errors[0].endswith("): nothing was edited")


@pytest.mark.parametrize(("output", "message"), [
    ("/proc/out", "error: cannot write the output /proc/out (its folder /proc cannot hold new files): "),
    ("{tmp}/file/out", "error: cannot write the output {tmp}/file/out: {tmp}/file is not a folder\n"),
])
def test_an_output_that_cannot_be_written_is_refused_before_a_server_starts(output, message, catalogue, tmp_path,
                                                                            capsys, no_server):
    (tmp_path / "file").write_text("in the way")
    assert main(["run", catalogue, output.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message.format(tmp=tmp_path)) and err.count("\n") == 1, err


@pytest.fixture
def s3_endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
        monkeypatch.setenv(name, value)
    yield f"http://{host}:{port}"
    server.stop()


def test_an_output_in_a_missing_bucket_is_refused_naming_bucket_and_output(s3_endpoint, catalogue, capsys, no_server):
    assert main(["run", catalogue, "s3://no-such-bucket/runs/first"]) == 2
    assert capsys.readouterr().err == ("error: cannot write the output s3://no-such-bucket/runs/first: bucket "
                                       "'no-such-bucket' does not exist\n")


def test_an_s3_dataset_without_credentials_is_refused_in_one_line(monkeypatch, tmp_path, capsys, no_server):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["run", "s3://catalogue/incoming/catalogue.jsonl", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        "error: no S3 credentials for the dataset s3://catalogue/incoming/catalogue.jsonl: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) where the run runs, or give storage_options\n")
    assert not (tmp_path / "out").exists()
