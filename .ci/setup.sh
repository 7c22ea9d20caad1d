#!/usr/bin/env bash
# Create .venv beside the repository (once) and install the toolkit with its test extras into it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
if ! .venv/bin/python -c "import nst_image, nst_jobs, pytest, jinja2, selenium, ray, tifffile, png; from importlib.metadata import entry_points as e; assert e(group='nst.extractors')" 2>/dev/null; then
  echo "installing the toolkit into .venv (torch 2.11.0 and friends, a few minutes the first time) ..." >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,ray]"
fi
