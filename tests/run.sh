#!/usr/bin/env bash
# Set up .venv if needed and run the test suite (CPU). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/.ci/setup.sh"
cd "$root"
exec .venv/bin/python -m pytest -q "$@"
