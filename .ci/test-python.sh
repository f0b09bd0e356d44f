#!/usr/bin/env bash
# selfmon-py's pytest suite: a fresh virtual environment, `pip install ./selfmon-py` (maturin from
# the package registry builds the extension from source, release profile), then pytest.
# Exits non-zero when the build or any test fails, and when pytest collected nothing (exit 5).
# Without CPython >= 3.9 it prints a SKIPPED line, unless SELFMON_REQUIRE_TOOLS names python.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
if ! bash .ci/install-python.sh >/dev/null 2>&1; then
  if [[ ",${SELFMON_REQUIRE_TOOLS:-}," == *",python,"* ]]; then
    echo "python is required (SELFMON_REQUIRE_TOOLS) but not usable" >&2
    exit 1
  fi
  echo "SKIPPED selfmon-py pytest suite: no CPython >= 3.9 with venv and pip"
  exit 0
fi
target="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target"
venv="$target/python-ci-venv"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q "pytest>=7"

# The CLI, for the test comparing history with `selfmon history --json`.
cargo build -q -p selfmon-cli --bin selfmon
export SELFMON_BIN="$target/debug/selfmon"

start=$(date +%s)
"$venv/bin/python" -m pip install -q ./selfmon-py
echo "selfmon-py: pip install (release build) took $(( $(date +%s) - start ))s"

set +e
(cd selfmon-py && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests)
status=$?
set -e
case $status in
  0) ;;
  5) echo "pytest collected no tests: treating as a failure" >&2; exit 1 ;;
  *) echo "pytest failed (exit $status)" >&2; exit "$status" ;;
esac
