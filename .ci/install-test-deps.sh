#!/usr/bin/env bash
# System packages the test suite needs (real servers on loopback, see
# ../shared/TESTING-REAL-SERVERS.md). Idempotent and non-interactive: run as root
# before pytest; it does no apt work when everything is already installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()

# OpenSSH server: `ssh://` remote tests (tests/servers.py, fixture sshd_server).
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)

# --- Chromium (viewer tests): Debian's build, driven by Playwright (never `playwright install`) ---
[ -x /usr/bin/chromium ] || missing+=(chromium)
# --- end Chromium ---

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-test-deps: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# sshd refuses to start without its privilege-separation directory.
if [ ! -d /run/sshd ]; then
    mkdir -p /run/sshd 2>/dev/null || echo "install-test-deps: could not create /run/sshd" >&2
fi
