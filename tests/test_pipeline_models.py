"""The batch flows on model bricks: four shards in flight share one tiny FLUX-Fill through the model runtime;
evaluate and rollouts keep a bounded number of shards in flight."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import tiny_models
from prefect import flow, task
from prefect.testing.utilities import prefect_test_harness

from flows.edit_catalogue import edit_catalogue
from flows.monitoring import Progress
from flows.scheduler import Chain, ShardRun, ShardScheduler, Step
from legoedit_core.config import Config
from legoedit_core.data.datasets import Shard
from legoedit_core.data.output import PartInfo, RunOutput
from legoedit_core.data.synthetic import write_catalogue
from legoedit_core.settings.pipeline import PipelineSettings

# Every shard needs ENV (plain) and STYLE (with its own LoRA) on the same FLUX-Fill base.
INSTRUCTIONS = ["make it look like a snowy winter day", "turn it into a watercolor painting"]


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


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
    config.pipeline = config.pipeline.model_copy(update={"shard_size": 2, "max_concurrent_shards": 4})
    summary = edit_catalogue(dataset=manifest, output=str(tmp_path / "out"), config=config)

    table = pq.read_table(RunOutput(str(tmp_path / "out")).current_files())
    assert table.column("status").to_pylist() == ["ok"] * 8, table.column("error").to_pylist()
    (model,) = [m for m in runtime.stats()["models"] if m["model"].startswith("diffusers.FluxFillPipeline")]
    assert model["loads"] == 1 and len(model["adapters"]) == 1
    assert summary["model_loads"] == {model["model"]: 1}  # the traces say the same: one load in the whole run
    assert summary["resident_bytes"] >= model["bytes"] > 0
    backends = {(node["tool"], node["backend"]) for trace in table.column("trace").to_pylist() for node in trace}
    assert backends == {("ENV", "flux-fill"), ("STYLE", "flux-fill")}


IN_FLIGHT = {"now": 0, "most": 0, "frozen": 0}
IN_FLIGHT_LOCK = threading.Lock()


@task
def read_shard(shard: Shard) -> np.ndarray:
    return np.zeros((64, 64, 3), np.uint8)  # stands for a shard's images


@task
def slow_part(shard: Shard, images: np.ndarray) -> PartInfo:
    with IN_FLIGHT_LOCK:
        IN_FLIGHT["frozen"] = min(IN_FLIGHT["frozen"] or gc.get_freeze_count(), gc.get_freeze_count())
        IN_FLIGHT["now"] += 1
        IN_FLIGHT["most"] = max(IN_FLIGHT["most"], IN_FLIGHT["now"])
    time.sleep(0.3)
    with IN_FLIGHT_LOCK:
        IN_FLIGHT["now"] -= 1
    return PartInfo(shard.index, f"part-{shard.index}", 1, {"ok": 1}, {})


class Committed(list):
    uri = "memory://committed"
    lease = None  # an output nobody else writes to

    def commit(self, info: PartInfo, attempt: int = 0) -> None:
        self.append(info.shard)


@flow
def bounded(limit: int) -> list[int]:
    committed = Committed()
    steps = Chain([Step("images", read_shard, lambda run: (run.shard,)),
                   Step("part", slow_part, lambda run: (run.shard, run.values["images"]))])
    scheduler = ShardScheduler(committed, PipelineSettings(max_concurrent_shards=limit), steps, Progress(6, 0))
    runs = [ShardRun(Shard(i, i, i + 1)) for i in range(6)]
    scheduler.run(list(runs))
    assert scheduler.failures == [] and scheduler.committed == 6
    assert all(run.committed and run.values == {} for run in runs)  # a committed shard's results are let go
    return committed


@pytest.mark.parametrize("limit", [1, 2])
def test_the_shard_scheduler_keeps_a_bounded_number_of_shards_in_flight(limit):
    """Every flow's shards (here a chain of whole-shard tasks, as evaluate and rollouts have) are in flight at
    most ``max_concurrent_shards`` at once, with the long-lived heap frozen while they run."""
    IN_FLIGHT.update(now=0, most=0, frozen=0)
    assert sorted(bounded(limit)) == list(range(6))  # every shard committed
    assert IN_FLIGHT["frozen"] > 10_000 and gc.get_freeze_count() == 0
    assert IN_FLIGHT["most"] == limit
