#!/usr/bin/env bash
# Regenerate the hashed locks of the two deployed environments from pyproject.toml:
# locks/producer.txt (the core + the `producer` extra, the VM) and locks/cluster.txt
# (the core + the `dataproc` extra, the Dataproc cluster). Run it after changing a pin
# of either; the synth refuses a lock that disagrees with pyproject.toml.
#
# Both boot on CPython 3.11 on Debian 12 (glibc 2.36, x86_64): the VM's python3 and
# Dataproc 2.2-debian12. The locks resolve for that target, whatever machine runs this,
# with every file's hash of each pinned release (cdktf/infra/artifacts/wheelhouse.py picks the wheels).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for lock in producer:producer cluster:dataproc; do
    name="${lock%%:*}" extra="${lock#*:}"
    .venv/bin/uv pip compile pyproject.toml --quiet --extra "$extra" --generate-hashes \
        --python-version 3.11 --python-platform x86_64-manylinux_2_36 \
        --custom-compile-command scripts/lock.sh --output-file "locks/$name.txt"
done
