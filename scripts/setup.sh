#!/usr/bin/env bash
# What both quick-start commands need first: npm packages, the compiled CLI, the Debian packages of the
# real node, the Kubernetes binaries and the node's images. Cheap when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npx tsc -p tsconfig.json
bash scripts/node-packages.sh
bash scripts/k8s-binaries.sh >/dev/null
bash scripts/node-images.sh >/dev/null
