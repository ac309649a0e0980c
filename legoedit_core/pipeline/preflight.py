"""What every run checks before it starts, wherever it starts (``legoedit run``, a deployment run, a schedule,
``deployments/serve.py``): a problem that would only surface later, or never (a typo saved in the output's manifest,
every row ``bad_input``), is refused at once in one line naming it, and nothing is written to the output.

- **config**: every key of ``bricks`` is read by some backend of an existing brick (no typo is ignored);
- **dataset**: it exists and its rows carry the required columns;
- **stores**: an ``s3://`` dataset or output has credentials to reach it (the client would otherwise retry and
  fail with a traceback deep in a task); an output's bucket exists;
- **output**: a local output can be created and written (``/proc/out``, a read-only folder, a file in the way).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import fsspec

from legoedit_core.bricks.settings_check import brick_settings_problems
from legoedit_core.config import Config
from legoedit_core.data.datasets import open_dataset
from legoedit_core.data.storage import TEMPORARY_SUFFIX, Storage

S3 = ("s3", "s3a")
# storage_options that carry credentials (or ask for none) themselves
CREDENTIAL_OPTIONS = ("key", "secret", "token", "anon", "profile", "session")


class PreflightFailed(ValueError):
    """A run cannot start: its config, dataset or output is wrong, or a store it names cannot be reached."""


def preflight(config: Config, dataset: str | None, output: str,
              storage_options: dict[str, Any] | None = None) -> None:
    """Check a run before it starts (the module's list); ``PreflightFailed`` with one line naming the first problem.
    ``dataset`` is None for a benchmark (its own reader checks it). Nothing is written."""
    options = storage_options or {}
    if problems := brick_settings_problems(config):
        raise PreflightFailed(f"config: {'; '.join(problems)}")
    for uri, what in ((dataset, "dataset"), (output, "output")):
        if uri is not None:
            _require_credentials(uri, what, options)
    if dataset is not None:
        _require_columns(dataset, options)
    _require_writable(output, options)


def _require_credentials(uri: str, what: str, options: dict[str, Any]) -> None:
    if fsspec.utils.get_protocol(uri) not in S3 or any(options.get(key) for key in CREDENTIAL_OPTIONS):
        return
    import botocore.session  # s3fs's own dependency: it finds credentials the way s3fs will

    if botocore.session.get_session().get_credentials() is None:
        raise PreflightFailed(f"no S3 credentials for the {what} {uri}: set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) where the run runs, or give storage_options")


def _require_columns(dataset: str, options: dict[str, Any]) -> None:
    missing = open_dataset(dataset, options).missing_columns()  # DatasetError when it does not exist
    if missing:
        raise PreflightFailed(f"{dataset}: no row has {' or '.join(map(repr, missing))}: every row would be "
                              "bad_input")


def _require_writable(output: str, options: dict[str, Any]) -> None:
    protocol = fsspec.utils.get_protocol(output)
    if protocol in S3:
        storage = Storage(output, options)
        bucket = storage.root.split("/", 1)[0]
        if not storage.exists(f"s3://{bucket}"):
            raise PreflightFailed(f"cannot write the output {output}: bucket {bucket!r} does not exist")
    elif protocol in ("file", "local"):
        _require_local_folder(Path(Storage(output, options).root))


def _require_local_folder(folder: Path) -> None:
    """The output folder, or its nearest existing parent, is a folder this process can create files in (tried with
    a temporary file, removed at once: permission bits do not tell about /proc or a read-only mount)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PreflightFailed(f"cannot write the output {folder}: {existing} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".legoedit-preflight-", suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as error:
        where = "" if existing == folder else f" (its folder {existing} cannot hold new files)"
        raise PreflightFailed(f"cannot write the output {folder}{where}: {error.strerror or error}") from None
