"""Opt-in URL roots normalised and re-checked on every redirect, reads bounded by bytes received, a full disk named
and cleaned up after, and JSON5 bounded in size (issue 24)."""

from __future__ import annotations

import errno
import http.server
import json
import os
import threading

import json5
import numpy as np
import pytest

from legoedit_core.data.datasets import InputRow
from legoedit_core.data.images import encode_png
from legoedit_core.data.inputs import InputReader
from legoedit_core.data.output import RunOutput
from legoedit_core.data.rows import empty_row, rows_to_table
from legoedit_core.data.storage import StorageError
from legoedit_core.pipeline.shard import load_row
from legoedit_core.settings.inputs import InputSettings
from legoedit_core.workflow import MAX_JSON5_CHARS, WorkflowError, load_json

PNG = encode_png(np.full((8, 8, 3), 200, np.uint8))
SECRET = b"private bytes that must never be stored"
CAP = 1 << 20


class Site(http.server.BaseHTTPRequestHandler):
    """/public/ok.png, /private/secret.png, redirects out of /public/, and an endless body without a length."""

    sent = 0

    def do_GET(self) -> None:  # noqa: N802 (the handler's name)
        path = self.path
        if path == "/public/ok.png":
            self._send(PNG)
        elif path == "/private/secret.png":
            self._send(SECRET)
        elif path.startswith("/public/jump"):
            self.send_response(302)
            self.send_header("Location", "/public/hop" if path == "/public/jump-twice" else "/private/secret.png")
            self.end_headers()
        elif path == "/public/hop":
            self.send_response(301)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/private/secret.png")
            self.end_headers()
        elif path == "/public/endless.png":  # ignores Range, no Content-Length: 200 MB unless the client stops
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"\0" * (1 << 20))
                    Site.sent += 1 << 20
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self.send_error(404)

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def reader(tmp_path, site: str) -> InputReader:
    return InputReader(str(tmp_path), settings=InputSettings(extra_roots=[f"{site}/public/"], private_hosts=True,
                                                             max_image_bytes=CAP))


@pytest.mark.parametrize("path", ["/public/../private/secret.png", "/public/%2e%2e/private/secret.png",
                                  "/public/%252e%252e/private/secret.png", "/PUBLIC/../private/secret.png",
                                  "/public/jump", "/public/jump-twice"])
def test_a_url_root_is_normalised_and_checked_after_every_redirect(tmp_path, site, path):
    loaded = load_row(InputRow(0, "u", "flip it", site + path), reader(tmp_path, site))
    assert loaded.image is None and loaded.source is None
    assert "refused: outside the dataset's root" in loaded.row.error and "/private/secret.png" in loaded.row.error


def test_a_url_inside_its_root_is_read(tmp_path, site):
    loaded = load_row(InputRow(0, "u", "flip it", f"{site}/public/ok.png"), reader(tmp_path, site))
    assert loaded.row.error is None and loaded.source == PNG


def test_a_body_without_length_is_cut_by_the_bytes_received(tmp_path, site):
    Site.sent = 0
    loaded = load_row(InputRow(0, "u", "flip it", f"{site}/public/endless.png"), reader(tmp_path, site))
    assert f"more than {CAP} bytes" in loaded.row.error
    assert Site.sent < 32 * CAP  # the client stopped reading: not the 200 MB the server would send


def test_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    output = RunOutput(str(tmp_path))
    pipe_file = type(output.storage.fs).pipe_file

    def full(self, path, value, **kwargs):
        with open(path, "wb") as handle:
            handle.write(value[: len(value) // 2])  # half written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", path)

    table = rows_to_table([empty_row("a", "ok")])
    monkeypatch.setattr(type(output.storage.fs), "pipe_file", full)
    with pytest.raises(StorageError, match=r"write .*parts/part-00003.parquet failed after 1 attempt\(s\) "
                                           r"\(the disk is full\)"):
        output.write_part(3, table)
    monkeypatch.setattr(type(output.storage.fs), "pipe_file", pipe_file)
    assert not [name for _, _, names in os.walk(tmp_path) for name in names if name.endswith(".tmp")]


def test_a_rerun_removes_the_temporaries_a_killed_writer_left(tmp_path):
    (tmp_path / "parts").mkdir()
    stray = [tmp_path / "parts" / ".part-00001.parquet.0a1b.tmp", tmp_path / ".report.html.ff.tmp"]
    for path in stray:
        path.write_bytes(b"partial")
    keep = tmp_path / "parts" / "notes.tmp"  # not one of ours (no dot name): kept
    keep.write_bytes(b"x")
    with RunOutput(str(tmp_path)).writing({"dataset_fingerprint": "d", "shard_size": 2, "config": {}}):
        pass
    assert not any(path.exists() for path in stray) and keep.exists()


def test_json5_is_read_only_up_to_its_size_limit(monkeypatch):
    lenient = "{nodes: [], output: '@a.image',}"
    assert load_json(lenient) == {"nodes": [], "output": "@a.image"}
    calls: list[int] = []
    monkeypatch.setattr(json5, "loads", lambda text: calls.append(len(text)))
    huge = "{nodes: [" + ", ".join(["{id: 'n', tool: 'BLUR', inputs: {}}"] * 60_000) + "]}"  # 2 MB, not JSON
    with pytest.raises(WorkflowError, match=f"JSON5 is only read up to {MAX_JSON5_CHARS} characters"):
        load_json(huge)
    assert calls == []  # refused without parsing
    assert json.loads(json.dumps({"big": "x" * 3_000_000}))  # strict JSON has no such limit
