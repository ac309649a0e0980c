"""How well the offline ``rules`` Builder understands instructions as people write them, and how fast it plans.

Reads one instruction set (``--set``, default the development set ``benchmarks/instructions/dev-wave3.jsonl``).
Sets named ``heldout-*`` are held out: written by someone who had not read the planner, committed before they were
run, never edited afterwards; for them only counts are printed (``--show-failures`` is refused), so the engineer who
changes the planner never reads their sentences. Sets named ``dev-*`` were tuned on.

Each row names a photo (a bundled example or a generated one), an instruction, whether it can be
done on the CPU profile and, if so, the accepted tool sets and literals (``expect``: a string must appear in some
node's literal of that name, ``[lo, hi]`` bounds a number; strings compare without case, with a hyphen or underscore
read as a space and British spellings as the bricks' US ones, so a writer's "top left" is the TEXT brick's
"top-left" choice and "watercolour" its "watercolor"). It prints:

- accepted-plan rate on the doable rows: a plan whose tools form one of the accepted sets and whose literals match;
- wrong edits: a plan for a row that should be declined, or a plan for a doable row with other tools or literals
  (an edit of something other than what was asked);
- dropped clauses: a plan for a row whose every accepted tool set is larger than the plan's tools (part of what was
  asked was silently left out);
- misses per ``category`` (rows that carry one);
- the seconds the planner takes for ``--count`` instructions (the set cycled; the first pass plans every distinct
  instruction cold, including loading the embedding model).

    python benchmarks/planner_understanding.py [--set PATH] [--count 1000] [--show-failures]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from legoedit_core.bricks.toolset import Toolset
from legoedit_core.data.images import read_image
from legoedit_core.planners.base import PlanRequest, PlanResult
from legoedit_core.planners.rules import RulesPlanner

ROOT = Path(__file__).resolve().parents[1]
DEVELOPMENT_SET = ROOT / "benchmarks" / "instructions" / "dev-wave3.jsonl"
BUNDLED = {"astronaut", "chelsea", "coffee", "rocket"}


def generated_photo(name: str, seed: int = 0) -> np.ndarray:
    """A seeded stand-in photo: ``product`` (object on a plain backdrop), ``banner`` (text over a gradient),
    ``landscape`` (sky over fields) or ``noisy`` (the landscape with sensor noise)."""
    rng = np.random.default_rng(seed)
    height, width = 384, 640
    y = np.linspace(0, 1, height)[:, None, None]
    if name == "product":
        image = np.full((height, width, 3), 235, np.float32)
        image[90:320, 260:380] = (40, 110, 60)
    elif name in ("landscape", "noisy", "banner"):
        sky = (90, 150, 230) + y * (120, 80, 20)
        field = (60, 140, 50) + y * (20, -40, 0)
        image = np.where(y < 0.55, sky, field) * np.ones((1, width, 1))
        if name == "noisy":
            image += rng.normal(0, 18, image.shape)
        if name == "banner":
            image[300:350, 120:520] = 250
            image[315:335, 140:500:12] = 20  # a row of letter-like strokes
    else:
        raise ValueError(f"no generated photo called {name!r}")
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def load_photo(name: str) -> np.ndarray:
    if name in BUNDLED:
        return read_image(ROOT / "examples" / "images" / f"{name}.jpg")
    return generated_photo(name)


def literals(plan: PlanResult) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    assert plan.workflow is not None
    for node in plan.workflow.nodes:
        for key, value in node.inputs.items():
            if not (isinstance(value, str) and value.startswith("@")):
                found.setdefault(key, []).append(value)
    return found


SPELLINGS = {"colour": "color", "grey": "gray", "centre": "center"}


def plain(text: str) -> str:
    """A literal compared as words: lower case, "-" and "_" as spaces, British spellings in their US form."""
    words = " ".join(text.lower().replace("-", " ").replace("_", " ").split())
    for british, us in SPELLINGS.items():
        words = words.replace(british, us)
    return words


def matches(expected: Any, values: list[Any]) -> bool:
    if isinstance(expected, list):
        low, high = expected
        return any(isinstance(v, int | float) and low <= v <= high for v in values)
    return any(isinstance(v, str) and plain(str(expected)) in plain(v) for v in values)


def accepted(row: dict[str, Any], plan: PlanResult) -> bool:
    """Whether ``plan`` is one the row accepts: its tool set is one of the accepted ones and its literals match."""
    if not plan.ok or not row["doable"]:
        return False
    tools = sorted(plan.workflow.tools())
    if not any(tools == sorted(option) or set(tools) == set(option) for option in row["accept"]):
        return False
    found = literals(plan)
    return all(matches(value, found.get(key, [])) for key, value in row.get("expect", {}).items())


def dropped_clause(row: dict[str, Any], plan: PlanResult) -> bool:
    """Whether a plan for a doable row does strictly less than every accepted tool set asks for."""
    if not plan.ok or not row["doable"]:
        return False
    tools = set(plan.workflow.tools())
    return all(tools < set(option) for option in row["accept"])


def requests(rows: list[dict[str, Any]]) -> list[PlanRequest]:
    photos = {name: load_photo(name) for name in {row["image"] for row in rows}}
    return [PlanRequest(row["id"], photos[row["image"]], row["instruction"], has_mask=bool(row.get("mask")))
            for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="instructions to time (the set cycled)")
    parser.add_argument("--set", type=Path, default=DEVELOPMENT_SET, help="a JSONL instruction set")
    parser.add_argument("--show-failures", action="store_true", help="print the failing rows (development sets only)")
    args = parser.parse_args()
    held_out = args.set.name.startswith("heldout")
    if args.show_failures and held_out:
        parser.error(f"{args.set.name} is held out: only its counts are printed")

    rows = [json.loads(line) for line in args.set.read_text().splitlines() if line.strip()]
    planner = RulesPlanner(Toolset())
    batch = requests(rows)
    timed = [batch[i % len(batch)] for i in range(args.count)]
    start, cpu = time.perf_counter(), time.process_time()
    planner.plan_batch(timed)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    plans = planner.plan_batch(batch)

    doable = [(row, plan) for row, plan in zip(rows, plans, strict=True) if row["doable"]]
    declines = [(row, plan) for row, plan in zip(rows, plans, strict=True) if not row["doable"]]
    good = [row for row, plan in doable if accepted(row, plan)]
    wrong = [(row, plan) for row, plan in doable if plan.ok and not accepted(row, plan)]
    wrong += [(row, plan) for row, plan in declines if plan.ok]
    if args.show_failures:
        for row, plan in doable:
            if not accepted(row, plan):
                shown = plan.workflow.tools() if plan.ok else plan.error
                print(f"  not accepted {row['id']} {row['instruction']!r}: {shown}")
        for row, plan in wrong:
            print(f"  WRONG {row['id']} {row['instruction']!r}: {plan.workflow.tools()} {literals(plan)}")
    dropped = [row for row, plan in doable if dropped_clause(row, plan)]
    misses: dict[str, int] = {}
    for row, plan in zip(rows, plans, strict=True):
        missed = not accepted(row, plan) if row["doable"] else plan.ok
        if missed:
            misses[row.get("category", "-")] = misses.get(row.get("category", "-"), 0) + 1
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.get("category", "-")] = totals.get(row.get("category", "-"), 0) + 1
    kind = "held-out" if held_out else "development"
    print(f"{kind} set {args.set.name}: {len(rows)} instructions, {len(doable)} doable on CPU, "
          f"{len(declines)} to decline")
    print(f"accepted plans on doable: {len(good)}/{len(doable)} = {len(good) / len(doable):.1%}")
    print(f"correct declines: {sum(not plan.ok for _, plan in declines)}/{len(declines)}")
    print(f"wrong edits: {len(wrong)}")
    print(f"plans that drop a clause: {len(dropped)}")
    print("misses by category: " + ", ".join(f"{name} {misses.get(name, 0)}/{count}"
                                             for name, count in sorted(totals.items())))
    ranked = planner.ranker.remembered if planner.ranker is not None else 0
    print(f"planning {args.count} instructions: {seconds:.2f} s wall, {cpu:.2f} s CPU "
          f"({1000 * seconds / args.count:.2f} ms each; {ranked} distinct clauses ranked against exemplars, "
          "the model load and the exemplars' embedding included)")


if __name__ == "__main__":
    main()
