#!/usr/bin/env bash
# The browser checks (tests/browser) drive a system Chromium with Playwright's Python package; no
# browser is ever downloaded (`playwright install` is not used). Which binary: $SIMPLE_LLM_CHROMIUM,
# else Debian's /usr/bin/chromium.
#
# - The binary is there and starts: nothing to do.
# - It is missing, we are root (a container, CI) and apt-get exists: install Debian's `chromium`.
# - Otherwise: say what to do and exit 1, so that `make test` stops here instead of passing
#   without its browser checks.
set -u
browser="${SIMPLE_LLM_CHROMIUM:-/usr/bin/chromium}"

starts() { [ -x "$1" ] && "$1" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1; }

fail() {
  {
    echo
    echo "*** make test needs a Chromium for the browser checks: $1 ***"
    echo "    Debian/Ubuntu: sudo apt-get install -y chromium   (then run make test again)"
    echo "    elsewhere:     SIMPLE_LLM_CHROMIUM=/path/to/chromium-or-chrome make test"
    echo "    without the browser checks (not the full test): .venv/bin/python -m pytest --ignore=tests/browser"
    echo
  } >&2
  exit 1
}

if starts "$browser"; then
  exit 0
fi
if [ -n "${SIMPLE_LLM_CHROMIUM:-}" ]; then
  fail "SIMPLE_LLM_CHROMIUM=$browser does not start"
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  fail "$browser is missing and only root can apt-get install it"
fi
echo "Installing Debian's chromium for the browser checks..."
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
  fail "apt-get install chromium failed"
fi
starts "$browser" || fail "chromium was installed but $browser does not start"
echo "Chromium: $("$browser" --version 2>/dev/null)"
