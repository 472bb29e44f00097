# Sourced by scripts/test and scripts/demo: make .venv and install the package into it.
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "need Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 2
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv .venv
    else
      echo "python venv module missing: sudo apt-get install python3-venv" >&2; exit 2
    fi
  fi
fi
# Install once per pyproject.toml and extras. pip's own output (and the build backend's notes, such
# as setuptools' "Editable installation" banner) goes to a log that is shown only on failure.
extras=${PA_DB_EXTRAS:-test}
stamp=".venv/.pa-db-installed-$extras"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the package with [$extras] into .venv (log: .venv/install.log)" >&2
  if ! { .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"; } \
       >.venv/install.log 2>&1; then
    cat .venv/install.log >&2; echo "pip install failed (log above)" >&2; exit 2
  fi
  echo "$want" >"$stamp"
fi
