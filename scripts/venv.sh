# Sourced by run.sh and test.sh: makes .venv and installs the project into it when
# pyproject.toml changed since the last install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

ensure_venv() {
    local extras="$1"
    local stamp="$VENV/.installed-$extras"
    local wanted
    wanted="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"

    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating the virtual environment in $VENV ..."
        "$PYTHON" -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
        echo "Installing Python packages ($extras) ..."
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        if [ "$extras" = "run" ]; then
            "$VENV/bin/python" -m pip install --quiet -e "$ROOT"
        else
            "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]"
        fi
        echo "$wanted" > "$stamp"
    fi
}
