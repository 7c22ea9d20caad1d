#!/usr/bin/env bash
# Set up .venv (and headless Chromium for the report test) if needed and run the test suite (CPU).
# Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/.ci/setup.sh"
bash "$root/.ci/setup_browser.sh"
cd "$root"
exec .venv/bin/python -m pytest -q "$@"
