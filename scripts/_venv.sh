# Shared by scripts/start and scripts/test: a virtualenv in .venv with the given requirements.
# Sourced, not run. Reinstalls only when a requirements file changed since the last install.
# The files installed are the locks (requirements.txt, requirements-dev.txt: every package pinned
# with its hashes, so pip checks each download); `make lock` rewrites them from requirements*.in,
# and a changed lock is newer than the stamp, so the next start or test run installs it.

PYTHON="${PYTHON:-python3}"

ensure_venv() {
  local requirements="$1"
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "smartchat: $PYTHON not found; install Python 3.11 or newer (or set PYTHON=/path/to/python3.11)" >&2
    exit 1
  fi
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "smartchat: Python 3.11 or newer is needed; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "smartchat: creating .venv with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv .venv
  fi
  local stamp=".venv/.installed-$(basename "$requirements")"
  if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
    echo "smartchat: installing $requirements (first run takes a minute)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}
