# shellcheck shell=bash
# Debian's chromium for the dashboard's browser tests (tests/browser), installed once when it is missing.
# Playwright drives this system browser; it never downloads one. Without it the browser tests are skipped.
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      echo "chromium is missing and there is no sudo to install it: the browser tests will be skipped" >&2
      return 0
    fi
    sudo=(sudo -n)  # never prompts: this runs without a terminal too
  fi
  if ! command -v apt-get >/dev/null; then
    echo "chromium is missing and there is no apt-get: the browser tests will be skipped" >&2
    return 0
  fi
  echo "installing Debian's chromium for the browser tests..." >&2
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y)
  # A stale package index is the usual reason an install fails: refresh it once and try again.
  { "${apt[@]}" install chromium || { "${apt[@]}" update && "${apt[@]}" install chromium; }; } </dev/null >/dev/null \
    || echo "could not install chromium: the browser tests will be skipped" >&2
}
