#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (/usr/bin/chromium) with Playwright. Install it with
# apt where it is missing and we may; otherwise say so: the browser tests then fail loudly.
set -u
browser="${SIMPLE_LLM_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$browser" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  sudo_cmd=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo_cmd="sudo"
else
  echo "!! Chromium is missing at $browser and this user cannot install it (apt-get install chromium)." >&2
  echo "!! The browser tests will fail until it is installed or SIMPLE_LLM_CHROMIUM names a browser." >&2
  exit 0
fi
echo "Installing Debian's chromium (browser tests)..."
$sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null \
  || echo "!! apt-get install chromium failed: the browser tests will fail." >&2
