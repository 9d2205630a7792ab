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
  # A kept tenant's control plane starts again with the cluster, a few seconds after it: return once
  # demo answers through the gateway, so the first kubectl command after this works.
  for _ in $(seq 1 120); do
    kubectl --context kplex_demo get --raw /readyz >/dev/null 2>&1 && exit 0
    sleep 0.5
  done
  echo "kplex: tenant demo did not answer within 60 s; see: kplex list, and the log in ~/.kplex/dev/logs/gateway.log" >&2
  exit 1
else
  kplex create demo --context kplex-host
fi
