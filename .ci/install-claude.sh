#!/usr/bin/env bash
# Installs the pinned Claude Code CLI for the real-CLI contract tests (selfmon-claude/tests/real_cli.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash selfmon-claude/install-claude-cli.sh
