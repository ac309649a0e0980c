"""The batch flow on model bricks: four shards in flight share one tiny FLUX-Fill through the model runtime."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import tiny_models
from prefect.testing.utilities import prefect_test_harness

from flows.edit_catalogue import edit_catalogue
from legoedit_core.config import Config
from legoedit_core.data.synthetic import write_catalogue
from legoedit_core.runtime import ModelRuntime

# Every shard needs ENV (plain) and STYLE (with its own LoRA) on the same FLUX-Fill base.
INSTRUCTIONS = ["make it look like a snowy winter day", "turn it into a watercolor painting"]


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def runtime():
    fresh = ModelRuntime()
    previous = ModelRuntime.set_default(fresh)
    yield fresh
    ModelRuntime.set_default(previous)


def tiny_model_profile(root) -> Config:
    """The gpu profile with its FLUX-Fill bricks pointed at a tiny local pipeline on the CPU."""
    base = tiny_models.build_flux_fill(root / "flux-fill")
    lora = tiny_models.build_flux_lora(base, root / "style-lora")
    fast = {"model": str(base), "device": "cpu", "dtype": "float32", "steps": 2, "max_area": 64 * 64,
            "max_sequence_length": 16}
    return Config.load(overrides=['profile="gpu"', 'bricks.ENV.backend="flux-fill"',
                                  'bricks.STYLE.backend="flux-fill"',
                                  *(f"bricks.ENV.flux-fill.{k}={v!r}" for k, v in fast.items()),
                                  *(f"bricks.STYLE.flux-fill.{k}={v!r}" for k, v in fast.items()),
                                  f"bricks.STYLE.flux-fill.lora={str(lora)!r}"])


def test_four_shards_in_flight_share_one_loaded_pipeline(tmp_path, runtime):
    config = tiny_model_profile(tmp_path)
    manifest = write_catalogue(str(tmp_path / "in"), 8, INSTRUCTIONS, size=(64, 48))
    summary = edit_catalogue(dataset=manifest, output=str(tmp_path / "out"), config=config, shard_size=2,
                             max_concurrent_shards=4)

    table = pq.read_table(tmp_path / "out" / "parts")
    assert table.column("status").to_pylist() == ["ok"] * 8, table.column("error").to_pylist()
    (model,) = [m for m in runtime.stats()["models"] if m["model"].startswith("diffusers.FluxFillPipeline")]
    assert model["loads"] == 1 and len(model["adapters"]) == 1
    assert summary["model_loads"] == {model["model"]: 1}  # the traces say the same: one load in the whole run
    assert summary["resident_bytes"] >= model["bytes"] > 0
    backends = {(node["tool"], node["backend"]) for trace in table.column("trace").to_pylist() for node in trace}
    assert backends == {("ENV", "flux-fill"), ("STYLE", "flux-fill")}
