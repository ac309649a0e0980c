"""Rows made the one way the project makes them: a catalogue through the edit flow (``flows/edit_catalogue.py``),
for tests that look at output rows. The flow needs a Prefect server: the module's ``prefect_server`` fixture."""

from __future__ import annotations

import pyarrow as pa

from flows.edit_catalogue import edit_catalogue
from legoedit_core.config import Config
from legoedit_core.data.output import RunOutput


def edited_rows(manifest: str, output: str, config: Config | None = None, shard_size: int = 100) -> pa.Table:
    """Edit ``manifest`` into ``output`` with the flow (no report) and return the output's rows, in input order."""
    config = (config or Config.load()).model_copy(deep=True)
    config.pipeline = config.pipeline.model_copy(update={"shard_size": shard_size})
    edit_catalogue(dataset=manifest, output=output, config=config, report=False)
    return RunOutput(output).read_table()
