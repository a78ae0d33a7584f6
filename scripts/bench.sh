#!/usr/bin/env bash
# scripts/bench.sh runs keel's load benchmark (scripts/bench) from the repo
# root: it builds keel, starts `keel sim` and `keel serve` on loopback, and
# compares the two under the same load. Flags pass through, e.g.
#   scripts/bench.sh -quick         # smoke test, under 30 s
#   scripts/bench.sh -json > b.json
# See scripts/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/bench "$@"
