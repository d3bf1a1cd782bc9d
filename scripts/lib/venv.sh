# shellcheck shell=bash
# Create ./.venv and install the project with the given extras, once per change of pyproject.toml.
ensure_venv() {
  local extras="$1" python="${PYTHON:-python3}" stamp
  if [ ! -x .venv/bin/python ]; then
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "Veil needs Python 3.11 or newer ($python is older)" >&2; exit 1; }
    "$python" -m venv .venv
  fi
  stamp=".venv/.veil-installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/-}"
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
    .venv/bin/python -m pip install --quiet -e ".[${extras}]"
    touch "$stamp"
  fi
}
