#!/usr/bin/env bash
# Checks for what selfmon-py's tests need: CPython >= 3.9 with venv and pip. Nothing to install
# system-wide (maturin and pytest go into a virtual environment in .ci/test-python.sh); exits 0
# only when a virtual environment with pip can be made.
set -euo pipefail
py="${PYTHON:-python3}"
command -v "$py" >/dev/null || { echo "no $py on PATH" >&2; exit 1; }
"$py" -c 'import sys; assert sys.version_info >= (3, 9), sys.version' || {
  echo "$py is older than 3.9" >&2
  exit 1
}
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
"$py" -m venv "$probe/venv" >/dev/null
"$probe/venv/bin/python" -m pip --version >/dev/null
echo "python: $("$py" --version 2>&1) with venv and pip"
