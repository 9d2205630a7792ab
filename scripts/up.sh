#!/usr/bin/env bash
# The embedded default (`npm run up`): installs what is missing, starts the dev cluster with its gateway,
# and gives you the tenant "demo": made the first time, connected again when an earlier run left it
# (`kplex dev down` keeps the data folder, tenants included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
kplex() { node bin/kplex.js "$@"; }
kplex dev up --detach
if kplex list --context kplex-host -o json | node -e 'process.exit(JSON.parse(require("fs").readFileSync(0, "utf8")).some((t) => t.name === "demo") ? 0 : 1)'; then
  kplex connect demo --context kplex-host
else
  kplex create demo --context kplex-host
fi
