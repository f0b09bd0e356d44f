#!/usr/bin/env bash
# Installs the pinned Claude Code CLI for selfmon-claude's contract test (tests/real_cli.rs).
#
# Usage: selfmon-claude/install-claude-cli.sh [DEST]   (default DEST: <workspace>/.ci/tools/claude)
# Prints the path of the native binary. The test finds it there, or via SELFMON_CLAUDE_BIN.
# Only the npm registry is contacted; install scripts are not run (the native binary ships in the
# platform package `@anthropic-ai/claude-code-<platform>` and is executed directly).
set -euo pipefail

CLAUDE_CODE_VERSION="2.1.332"
export DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1

workspace="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$workspace/.ci/tools/claude}"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform="linux-x64" ;;
  Linux-aarch64 | Linux-arm64) platform="linux-arm64" ;;
  Darwin-arm64) platform="darwin-arm64" ;;
  Darwin-x86_64) platform="darwin-x64" ;;
  *) echo "install-claude-cli: unsupported platform $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
if [ "$(uname -s)" = Linux ] && ldd --version 2>&1 | grep -qi musl; then
  platform="$platform-musl"
fi
bin="$dest/node_modules/@anthropic-ai/claude-code-$platform/claude"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "^$CLAUDE_CODE_VERSION "; then
  echo "$bin"
  exit 0
fi

command -v npm >/dev/null || { echo "install-claude-cli: npm is required" >&2; exit 1; }
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --ignore-scripts --no-save \
  "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" \
  "@anthropic-ai/claude-code-$platform@$CLAUDE_CODE_VERSION" >&2

if ! "$bin" --version | grep -q "^$CLAUDE_CODE_VERSION "; then
  echo "install-claude-cli: $bin is not version $CLAUDE_CODE_VERSION" >&2
  exit 1
fi
echo "$bin"
