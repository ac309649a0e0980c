"""Lock files of the install profiles, resolved by uv from package metadata for linux x86_64, Python 3.11.

    python scripts/lock.py            # write every lock
    python scripts/lock.py --check    # re-resolve each (seconds, no wheel downloaded) and fail if a lock is stale

Profiles (README, "Install"):

- ``cpu``: the core (``pip install -e .``); ``dev``: the tests and linters (CI's environment);
- ``gpu``: the model backends and training (``models`` + ``rl`` extras; torch from PyPI is its CUDA build);
- ``vllm``: the vLLM server's own environment (``infra/vllm``), apart from the project's: vLLM pins fastapi below
  0.137 while Prefect 3.8.8 needs 0.139 or later, so the two never share one environment (docs/models.md).

Writing a lock resolves afresh as of ``EXCLUDE_NEWER``; move the date to take newer releases. Checking a lock
resolves again with the committed pins as uv's preferences (no ``--upgrade``): a lock is current as long as its pins
still satisfy its inputs, whatever the registry published since. A fresh resolution is not the test, because the
registry mirror these machines reach fills in uploads dated before the cut-off days late (pydocket 0.28.0 and pandas
3.1.2 appeared under a cut-off a week old), so the same inputs resolve differently from one day to the next.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDE_NEWER = "2026-12-01T00:00:00Z"
PLATFORM = ("--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11")
# profile: (the requirements it resolves, extras, its lock file), paths from the repository root
PROFILES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "cpu": ("pyproject.toml", (), "requirements/cpu.txt"),
    "dev": ("pyproject.toml", ("dev",), "requirements/dev.txt"),
    "gpu": ("pyproject.toml", ("models", "rl"), "requirements/gpu.txt"),
    "vllm": ("infra/vllm/requirements.in", (), "infra/vllm/requirements.txt"),
}


def compile_command(profile: str, output: Path, fresh: bool = True) -> list[str]:
    """The ``uv pip compile`` that writes ``profile``'s lock to ``output``: ``fresh``, ignoring the pins already in
    ``output``, or keeping each pin that still satisfies the requirements."""
    source, extras, _ = PROFILES[profile]
    return [sys.executable, "-m", "uv", "pip", "compile", "--quiet", source, *(f"--extra={e}" for e in extras),
            *PLATFORM, "--exclude-newer", EXCLUDE_NEWER, *(["--upgrade"] if fresh else []),
            "--custom-compile-command", "python scripts/lock.py",
            "-o", str(output)]


def resolve(profile: str, output: Path, fresh: bool = True) -> None:
    """Resolve ``profile`` into ``output``; raise with uv's explanation when it has no solution."""
    run = subprocess.run(compile_command(profile, output, fresh), cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"the {profile} profile does not resolve:\n{run.stderr.strip()}")


def stale(profile: str) -> str | None:
    """None when ``profile``'s committed lock still satisfies its requirements (resolving again with its pins as
    preferences changes nothing), else the difference."""
    lock = ROOT / PROFILES[profile][2]
    old = lock.read_text().splitlines() if lock.exists() else []
    with tempfile.TemporaryDirectory() as directory:
        again = Path(directory) / lock.name
        if lock.exists():
            again.write_text(lock.read_text())
        resolve(profile, again, fresh=False)
        new = again.read_text().splitlines()
    if old == new:
        return None
    return "\n".join(difflib.unified_diff(old, new, str(lock), "resolved now", lineterm="", n=0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a lock no longer satisfies its requirements")
    parser.add_argument("profiles", nargs="*", help=f"some of {', '.join(PROFILES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = set(args.profiles) - set(PROFILES)
    if unknown:
        parser.error(f"unknown profile(s) {', '.join(sorted(unknown))}: choose from {', '.join(PROFILES)}")
    failed = False
    for profile in args.profiles or PROFILES:
        if args.check:
            difference = stale(profile)
            failed |= difference is not None
            print(f"{profile}: {'current' if difference is None else 'STALE'}\n{difference or ''}".rstrip())
        else:
            resolve(profile, ROOT / PROFILES[profile][2])
            print(f"{profile}: wrote {PROFILES[profile][2]}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
