#!/usr/bin/env bash
# Builds the packaged program: build/out/dist/IntegrationUI/ holds IntegrationUI
# (IntegrationUI.exe on Windows), IntegrationUI.exe.config beside it and _internal/.
# PyInstaller's work folder is build/out/work. Both are git-ignored.
# Usage: build/build.sh [OUT_DIR]   (default: build/out)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/venv.sh"

OUT="$(mkdir -p "${1:-$ROOT/build/out}" && cd "${1:-$ROOT/build/out}" && pwd)"

# The venv with the agent's own packages; made (or updated) only when it lacks them.
"$VENV/bin/python" -c "import agent, flask, zeep, keyring" 2>/dev/null || ensure_venv run

# PyInstaller, in the range pyproject.toml's test extras name.
if ! "$VENV/bin/python" -c "import PyInstaller" 2>/dev/null; then
    wanted="$("$VENV/bin/python" - "$ROOT/pyproject.toml" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as stream:
    extras = tomllib.load(stream)["project"]["optional-dependencies"]["test"]
print(next(d for d in extras if d.lower().startswith("pyinstaller")))
EOF
)"
    echo "Installing $wanted into $VENV ..."
    "$VENV/bin/python" -m pip install --quiet "$wanted"
fi

cd "$ROOT"
started=$SECONDS
"$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$OUT/dist" --workpath "$OUT/work" build/IntegrationUI.spec

echo "Built $OUT/dist/IntegrationUI in $((SECONDS - started)) s" \
    "($(du -sh "$OUT/dist/IntegrationUI" | cut -f1))"
