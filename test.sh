#!/usr/bin/env bash
# Runs every test, installing first what the tests need: the venv with the project and
# its test packages, and Debian's chromium and Xvfb tools for the browser and tray tests.
# Extra arguments go to pytest, e.g. ./test.sh tests/unit -x
source "$(dirname "${BASH_SOURCE[0]}")/scripts/venv.sh"

DEBIAN_PACKAGES=(chromium xvfb xdotool imagemagick trayer dbus-x11 python3-gi gir1.2-gtk-3.0 dunst)

install_debian_packages() {
    local missing=()
    for package in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "Please install these Debian packages (as root): ${missing[*]}" >&2
        return 1
    fi
    echo "Installing Debian packages: ${missing[*]} ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" > /dev/null
}

install_debian_packages
ensure_venv test
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
