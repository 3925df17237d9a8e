#!/usr/bin/env bash
# The test command (README line 2): make a venv, install the pack with its test extras, lint, run pytest.
# The integration tier runs only when COMFYUI_PATH / KOHYA_SS_PATH point at real checkouts;
# otherwise those tests skip with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
# Lint and format first: a style slip fails as fast as a broken test.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
set +e
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "no tests ran (pytest exit 5): failing" >&2; exit 1; fi
exit "$rc"
