#!/usr/bin/env bash
# The install step of every boot. The startup script of the producer VM and the
# initialization action of the Dataproc nodes carry this file verbatim (cdktf/infra/artifacts/boot.py)
# and run it in a bash of its own; tests/cdktf/test_install_artifact.py runs it
# offline on the synthesized artifacts.
#
#   install_artifact.sh ARTIFACT SHA256 VENV PYTHON [VENV OPTION...]
#
# Refuses ARTIFACT unless its sha256 is SHA256 (the one synthesized, which the boot
# script carries), before unpacking anything. Then makes a new venv VENV with PYTHON
# and installs the requirements.txt of the artifact from its wheels/ only: no index,
# the hash of every file checked, nothing built, no pip configuration of the host
# applied, and every locked file installed into VENV even where the packages of
# PYTHON (seen with --system-site-packages) have the release. A failed install
# leaves no venv behind.
set -euo pipefail
if [ "$#" -lt 4 ]; then
    echo "usage: install_artifact.sh ARTIFACT SHA256 VENV PYTHON [VENV OPTION...]" >&2
    exit 2
fi
artifact="$1" sha256="$2" venv="$3" python="$4"
shift 4

if ! printf "%s  %s\n" "$sha256" "$artifact" | sha256sum --check --status; then
    echo "install_artifact: refusing $artifact: its sha256 is not $sha256, the one synthesized" >&2
    exit 1
fi

unpacked="$(mktemp -d)"
clean_up() { rm -rf "$unpacked"; }
trap clean_up EXIT
tar -xf "$artifact" -C "$unpacked"
rm -rf "$venv"
if ! { "$python" -m venv "$@" "$venv" &&
    PIP_CONFIG_FILE=/dev/null "$venv/bin/python" -m pip install --isolated --quiet --disable-pip-version-check \
        --no-cache-dir --no-index --require-hashes --only-binary=:all: --ignore-installed \
        --find-links "$unpacked/wheels" --requirement "$unpacked/requirements.txt"; }; then
    rm -rf "$venv"
    echo "install_artifact: installing $artifact into $venv failed" >&2
    exit 1
fi
echo "install_artifact: installed $artifact into $venv"
