"""Every install profile resolves on linux x86_64 and its committed lock is current: ``scripts/lock.py`` re-resolves
each from package metadata with uv (seconds, no wheel downloaded; it needs the package registry, as CI has)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402 (scripts/lock.py: the profiles and how each is resolved)


def pins(profile: str) -> dict[str, str]:
    text = (ROOT / lock.PROFILES[profile][2]).read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, re.MULTILINE))


@pytest.mark.parametrize("profile", list(lock.PROFILES))
def test_each_profile_resolves_to_its_committed_lock(profile):
    difference = lock.stale(profile)  # raises with uv's explanation when the profile has no solution
    assert difference is None, f"requirements changed: run `python scripts/lock.py {profile}`\n{difference}"


def test_the_gpu_profile_keeps_prefect_and_the_vllm_server_has_its_own_fastapi():
    gpu, vllm = pins("gpu"), pins("vllm")
    assert gpu["prefect"] == "3.8.8" and "vllm" not in gpu and gpu["torch"] == "2.13.0"
    assert any(name.startswith("nvidia-") for name in gpu), "torch from PyPI on linux x86_64 is its CUDA build"
    assert vllm["vllm"] == "0.33.0" and "prefect" not in vllm
    fastapi = tuple(int(part) for part in vllm["fastapi"].split(".")[:2])
    assert fastapi < (0, 137), "vLLM's fastapi range, below Prefect 3.8.8's (>= 0.139): the reason for two environments"


def test_a_conflicting_requirement_is_reported_with_uvs_explanation(tmp_path, monkeypatch):
    conflicting = tmp_path / "conflict.in"
    conflicting.write_text("prefect==3.8.8\nvllm==0.33.0\n")
    monkeypatch.setitem(lock.PROFILES, "conflict", (str(conflicting), (), str(tmp_path / "conflict.txt")))
    with pytest.raises(RuntimeError, match="does not resolve") as raised:
        lock.resolve("conflict", tmp_path / "conflict.txt")
    assert "fastapi" in str(raised.value)


def test_a_lock_is_current_while_its_pins_satisfy_the_requirements(tmp_path, monkeypatch):
    """An older pin that still satisfies the requirements is current (a release the registry back-fills later does
    not make the lock stale); a requirement the pin no longer meets does."""
    requirements, locked = tmp_path / "six.in", tmp_path / "six.txt"
    monkeypatch.setitem(lock.PROFILES, "six", (str(requirements), (), str(locked)))
    requirements.write_text("six\n")
    lock.resolve("six", locked)
    newest = re.search(r"^six==(\S+)", locked.read_text(), re.MULTILINE).group(1)
    assert newest != "1.16.0"
    locked.write_text(locked.read_text().replace(f"six=={newest}", "six==1.16.0"))
    assert lock.stale("six") is None
    requirements.write_text(f"six>={newest}\n")
    assert "+six==" in (lock.stale("six") or "")
