"""GRPO's group-relative advantages: each sample's reward against the other samples of its group."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

EPSILON = 1e-6


def group_advantages(rewards: Sequence[float], scale: bool = True) -> list[float]:
    """(reward - group mean) / group standard deviation; all zeros when the rewards are all equal.

    ``scale=False`` leaves out the division (Dr. GRPO). A group whose rewards do not vary teaches nothing, so its
    advantages are exactly 0, never NaN.
    """
    values = np.asarray(rewards, dtype=np.float64)
    if values.size == 0:
        return []
    if not np.all(np.isfinite(values)):
        raise ValueError(f"rewards must be finite numbers, got {values.tolist()}")
    centred = values - values.mean()
    spread = values.std()
    if spread < EPSILON:
        return [0.0] * values.size
    return (centred / spread if scale else centred).tolist()


def advantages_by_group(groups: Sequence[Hashable], rewards: Sequence[float], scale: bool = True) -> list[float]:
    """Advantages of samples listed in any order, each relative to the samples that share its group id."""
    if len(groups) != len(rewards):
        raise ValueError(f"{len(groups)} group ids for {len(rewards)} rewards")
    members: dict[Hashable, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    advantages = [0.0] * len(rewards)
    for indices in members.values():
        for index, advantage in zip(indices, group_advantages([rewards[i] for i in indices], scale), strict=True):
            advantages[index] = advantage
    return advantages
