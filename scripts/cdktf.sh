#!/usr/bin/env bash
# The CDKTF CLI, pinned: `scripts/cdktf.sh synth`, `scripts/cdktf.sh deploy dev`, ...
# Installs cdktf-cli into .tools/cdktf-cli on first use (about 420 MB, 40 s; its
# node_modules/ is gitignored) and runs it from the repository root, where
# cdktf.json points it at `.venv/bin/python cdktf/main.py`. Works offline once
# installed; deploy and destroy also need terraform (>= 1.5) and gcloud credentials.
set -euo pipefail
version=0.21.0
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/.tools/cdktf-cli"
cli="$prefix/node_modules/.bin/cdktf"

if ! grep -qs "\"version\": \"$version\"" "$prefix/node_modules/cdktf-cli/package.json"; then
    echo "cdktf.sh: installing cdktf-cli@$version into $prefix" >&2
    npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
        "cdktf-cli@$version" >&2
fi

# No version check or crash-report calls home; no jsii banner about Node 20.
export CHECKPOINT_DISABLE=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
cd "$root"
exec "$cli" "$@"
