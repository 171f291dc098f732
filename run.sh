#!/usr/bin/env bash
# Runs the agent with its built-in sandbox (emulated KSC, Business Hub and Tigerpaw).
# Extra arguments go to integration-agent, e.g. ./run.sh --no-browser
source "$(dirname "${BASH_SOURCE[0]}")/scripts/venv.sh"
ensure_venv run
exec "$VENV/bin/integration-agent" --sandbox "$@"
