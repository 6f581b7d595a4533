#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver, which the viewer page's browser tests drive
# (tests/stack/browser/): installed when missing. As root (CI) it installs them; otherwise
# it stops with the command to run as root. The package lists are refreshed only when the
# install fails for want of them.
set -euo pipefail
packages=(chromium chromium-driver)
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "browser tests need /usr/bin/chromium and /usr/bin/chromedriver: run as root:" \
        "apt-get install -y chromium chromium-driver" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! apt-get install -y -q "${packages[@]}" >"$log" 2>&1; then
    if ! grep -qE "Unable to locate package|has no installation candidate|Failed to fetch|404" "$log"; then
        cat "$log" >&2
        exit 1
    fi
    apt-get update -q
    apt-get install -y -q "${packages[@]}"
fi
