#!/usr/bin/env bash
# Sourced by the README's commands: make a fresh Debian machine ready.
# Creates .venv with the given extras installed and makes sure Java 17 is there
# (Spark needs it). Idempotent: a second run only checks.
set -euo pipefail
extras="${1:-local}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v java >/dev/null 2>&1; then
    echo "bootstrap: Java not found; installing openjdk-17-jre-headless (Spark needs a JVM)" >&2
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
