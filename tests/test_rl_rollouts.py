"""The rollouts flow: K samples per item, executed, judged, rewarded, with group advantages, on Prefect."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from prefect.testing.utilities import prefect_test_harness
from tiny_vlm import save_tiny_vlm

from flows.rollouts import rollouts
from legoedit_core.config import Config
from legoedit_core.data.datasets import default_seed
from legoedit_core.data.output import OutputMismatch
from legoedit_core.judge.vlm import VLMJudge
from legoedit_core.rl.rollouts import ROLLOUT_SCHEMA, RolloutOutput, sample_seed
from legoedit_core.settings.judge import JudgeSettings
from legoedit_core.settings.pipeline import PipelineSettings

ITEMS = [
    ("make it black and white", {"tools": ["GRAYSCALE"]}),
    ("blur the background", {"tools": ["SOS", "CBG"]}),
    ("flip it horizontally", {"tools": ["FLIP"]}),
    ("brighten the photo", {"tools": ["ADJUST"]}),
    ("turn it into a pencil sketch", {"tools": ["STYLE"]}),
    ("make the sky orange", {"tools": ["RES", "RCM"]}),
    ("sharpen the image", {"tools": ["SHARPEN"]}),
    ("teach the astronaut to juggle", {}),  # outside the rules planner: every sample fails alike
]


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield


def in_shards_of(size: int, **sections) -> Config:
    """A config whose rollouts run in shards of ``size`` items (and its other ``sections``)."""
    return Config(pipeline=PipelineSettings(shard_size=size), **sections)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, astronaut) -> str:
    folder = tmp_path_factory.mktemp("rollout_data")
    Image.fromarray(astronaut).resize((96, 96)).save(folder / "astronaut.png")
    lines = [json.dumps({"id": f"item{i}", "image": "astronaut.png", "instruction": text, "target": target})
             for i, (text, target) in enumerate(ITEMS)]
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    return str(folder / "train.jsonl")


@pytest.fixture(scope="module")
def judge(tmp_path_factory) -> JudgeSettings:
    model = save_tiny_vlm(tmp_path_factory.mktemp("rollout_judge"))
    return JudgeSettings(engine="transformers", model=str(model), temperature=1.0, image_size=64,
                         max_reasoning_chars=8)


def test_k4_on_8_items_writes_32_rewarded_rows_with_group_advantages(tmp_path, dataset, judge):
    output = str(tmp_path / "rollouts")
    summary = rollouts(dataset, output, k=4, temperature=1.0, config=in_shards_of(4, judge=judge))
    assert summary["rows"] == summary["samples"] == 32
    table = pq.read_table(f"{output}/parts", schema=ROLLOUT_SCHEMA)
    rows = table.to_pylist()
    assert len(rows) == 32
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["group_id"], []).append(row)
    assert sorted(groups) == [f"item{i}" for i in range(8)]
    for group_id, members in groups.items():
        assert sorted(m["sample_index"] for m in members) == [0, 1, 2, 3]
        advantages = [m["advantage"] for m in members]
        assert all(np.isfinite(advantages)), group_id
        assert sum(advantages) == pytest.approx(0.0, abs=1e-9)
        rewards = [m["reward"] for m in members]
        if len(set(rewards)) > 1:
            assert np.std(advantages) == pytest.approx(1.0)
            assert np.argmax(advantages) == np.argmax(rewards)
    # the uncovered instruction: every sample gets reward 0 and advantage exactly 0
    failed = groups["item7"]
    assert {m["status"] for m in failed} == {"invalid_plan"}
    assert [m["advantage"] for m in failed] == [0.0, 0.0, 0.0, 0.0]
    assert [m["reward"] for m in failed] == [0.0, 0.0, 0.0, 0.0]
    # the judge's sampled scores make rewards differ inside the edited groups
    edited = [m for m in rows if m["status"] == "ok"]
    assert len(edited) == 28 and all(m["reward_judge"] is not None for m in edited)
    assert any(len({m["reward"] for m in members}) > 1 for members in groups.values())
    first = groups["item0"][0]
    assert first["reward_tool"] == 1.0 and first["reward_format"] == 1.0 and first["reward_executability"] == 1.0
    assert [m["seed"] for m in groups["item0"]] == [sample_seed(default_seed("item0"), i) for i in range(4)]


def test_rollout_rows_read_as_rl_training_data(tmp_path, dataset):
    from datasets import load_dataset

    output = str(tmp_path / "rollouts")
    rollouts(dataset, output, k=2, config=in_shards_of(8))
    data = load_dataset("parquet", data_files=f"{output}/parts/*.parquet", split="train")
    row = data[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["prompt"][1]["content"].startswith("<image>Instruction: make it black and white")
    assert row["images"][0].size == (96, 96)  # decoded as a PIL image by the datasets library
    assert row["response"].startswith("<think>") and '"GRAYSCALE"' in row["response"]
    assert json.loads(row["reward_model"]["ground_truth"])["target"] == {"tools": ["GRAYSCALE"]}
    assert row["data_source"] == "legoedit" and row["reward"] == 1.0
    assert data[0]["seed"] != data[1]["seed"]  # each sample has its own seed


def test_a_rerun_skips_finished_shards_and_refuses_another_k(tmp_path, dataset):
    output = tmp_path / "rollouts"
    rollouts(dataset, str(output), k=2, config=in_shards_of(4))
    part = output / "parts" / "part-00000.parquet"
    written = part.stat().st_mtime_ns
    assert rollouts(dataset, str(output), k=2, config=in_shards_of(4))["samples"] == 16
    assert part.stat().st_mtime_ns == written
    with pytest.raises(OutputMismatch, match="k=2"):
        rollouts(dataset, str(output), k=3, config=in_shards_of(4))


def test_a_bad_input_row_is_one_row_without_samples(tmp_path, dataset):
    broken = tmp_path / "broken.jsonl"
    source = Path(dataset)
    broken.write_text(source.read_text() + '{"id": "gone", "image": "nowhere.png", "instruction": "flip it"}\n')
    (tmp_path / "astronaut.png").write_bytes((source.parent / "astronaut.png").read_bytes())
    output = str(tmp_path / "out")
    summary = rollouts(str(broken), output, k=2, config=in_shards_of(16))
    rows = pq.read_table(f"{output}/parts", schema=ROLLOUT_SCHEMA).to_pylist()
    assert summary["rows"] == 17 and summary["samples"] == 16
    bad = [r for r in rows if r["id"] == "gone"]
    assert len(bad) == 1 and bad[0]["status"] == "bad_input" and "nowhere.png" in bad[0]["error"]
    assert bad[0]["sample_index"] is None and bad[0]["advantage"] is None


def flow_rows(dataset: str, output: Path, k: int, shard_size: int, judge: VLMJudge | None = None,
              monkeypatch: pytest.MonkeyPatch | None = None) -> list[dict]:
    """The rows of the first shard of a rollouts run (the flow: the one shard path); ``judge`` stands in for the
    config's judge in its reward task."""
    if judge is not None and monkeypatch is not None:
        monkeypatch.setattr("tasks.rl.judge_for", lambda settings: judge)
    rollouts(dataset, str(output), k=k, temperature=1.0, config=in_shards_of(shard_size))
    return RolloutOutput(str(output)).read_table().to_pylist()[:shard_size * k]


def test_a_shard_of_rollouts_holds_k_rewarded_samples_per_row_with_opposite_advantages(tmp_path, dataset):
    rows = flow_rows(dataset, tmp_path / "out", k=2, shard_size=3)
    assert [r["id"] for r in rows] == ["item0#0", "item0#1", "item1#0", "item1#1", "item2#0", "item2#1"]
    assert all(0 < r["reward"] <= 1 and r["reward_judge"] is None for r in rows)
    for first, second in zip(rows[::2], rows[1::2], strict=True):  # the rules planner samples: rewards may differ
        assert first["advantage"] == -second["advantage"]
        assert (first["advantage"] == 0) == (first["reward"] == second["reward"])


class ScriptedJudgeEngine:
    """A judge engine on loopback terms: full scores, except an unreadable reply for instructions it is told to
    fail (``always``) and a first unreadable reply for those it is told to fail once (``once``)."""

    name = "scripted"

    def __init__(self, always: str, once: str) -> None:
        self.always, self.once, self.asked = always, once, []

    def generate(self, chats, fmt, seeds):
        replies = []
        for chat in chats:
            text = chat[-1].text
            self.asked.append(text)
            fails = self.always in text or (self.once in text and self.asked.count(text) == 1)
            replies.append("not a score" if fails else json.dumps(
                {"reasoning": "fine", "fulfilment": 4, "quality": 3, "preservation": 3, "semantic_consistency": 10,
                 "perceptual_quality": 10}))
        return replies


def test_a_group_whose_judge_call_still_fails_is_excluded_whole_never_mixed(tmp_path, dataset, monkeypatch):
    engine = ScriptedJudgeEngine(always="flip it", once="brighten")
    judge = VLMJudge(JudgeSettings(engine="transformers", model="scripted", max_attempts=2), engine=engine)
    rows = flow_rows(dataset, tmp_path / "out", k=3, shard_size=4, judge=judge, monkeypatch=monkeypatch)
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["group_id"], []).append(row)
    flipped = groups["item2"]  # "flip it horizontally": the judge never gives a score, even when asked again
    assert all(row["advantage"] is None for row in flipped)
    assert {row["excluded"] for row in flipped} == {"the judge gave item2#0 no score: no scores found in the reply"}
    brightened = groups["item3"]  # the first reply was unreadable, the second ask scored it: kept
    assert all(row["excluded"] is None and row["reward_judge"] == 1.0 for row in brightened)
    assert all(row["excluded"] is None and row["advantage"] is not None for row in groups["item0"])
    assert sum(text.count("flip it") for text in engine.asked) == 3 * 2  # every sample asked twice (one shard)


def test_rollouts_and_the_trl_reward_score_a_group_with_an_unjudged_sample_the_same(tmp_path, dataset, monkeypatch):
    """One scoring (``rl.scoring.score_samples``) for both: the rollouts' answers given to the TRL reward function as
    completions get the same rewards, and the group with a sample the judge never scores is excluded by both
    (rollouts: ``excluded`` and no advantage; TRL: None, which it leaves out of the group's baseline)."""
    from legoedit_core.bricks.toolset import Toolset
    from legoedit_core.rl.rewards import COMPONENTS, RewardModel
    from legoedit_core.rl.rollouts import rollout_config
    from legoedit_core.rl.train import BuilderReward

    toolset = Toolset(rollout_config(Config(), temperature=1.0))
    judge = VLMJudge(JudgeSettings(engine="transformers", model="scripted", max_attempts=2),
                     engine=ScriptedJudgeEngine(always="flip it", once="no instruction says this"))
    rows = [row for row in flow_rows(dataset, tmp_path / "out", k=3, shard_size=4, judge=judge,
                                     monkeypatch=monkeypatch) if row["response"] is not None]
    reward = BuilderReward(toolset, RewardModel(), judge)
    totals = reward([row["prompt"] for row in rows],
                    [[{"role": "assistant", "content": row["response"]}] for row in rows],
                    instruction=[row["instruction"] for row in rows],
                    ground_truth=[row["ground_truth"] for row in rows],
                    image_uri=[str(Path(dataset).parent / "astronaut.png")] * len(rows))
    excluded = {row["group_id"] for row in rows if row["excluded"] is not None}
    assert excluded == {"item2"}  # "flip it horizontally": the judge never scores it
    for row, total, trained in zip(rows, totals, reward.last, strict=True):
        unjudged = row["group_id"] in excluded
        assert (total is None) == unjudged == (row["advantage"] is None) == (trained["excluded"] is not None)
        for name in COMPONENTS:  # every component the same, the judge's included
            assert trained[name] == pytest.approx(row[f"reward_{name}"]), (row["id"], name)
        if not unjudged:
            assert total == pytest.approx(row["reward"]) and row["reward_judge"] == 1.0
