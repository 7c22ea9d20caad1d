#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian packages) for the report's browser test, if missing.
# Needs root or password-less sudo; without either it says so and the browser test skips (or fails under
# NST_REQUIRE_BROWSER=1, as in .ci/run).
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
if (have chromium || have chromium-browser) && have chromedriver; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  apt=(apt-get)
elif have sudo && sudo -n true 2>/dev/null; then
  apt=(sudo apt-get)
else
  echo "note: chromium and chromedriver are not installed and this user cannot install them;" \
       "the report's browser test will not run (install: apt-get install chromium chromium-driver)" >&2
  exit 0
fi
echo "installing chromium and chromium-driver for the report's browser test ..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! "${apt[@]}" install -y -qq chromium chromium-driver >/dev/null; then
  "${apt[@]}" update -qq
  "${apt[@]}" install -y -qq chromium chromium-driver >/dev/null
fi
