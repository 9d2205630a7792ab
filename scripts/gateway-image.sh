#!/usr/bin/env bash
# Builds the gateway image the Dockerfile describes, without a container engine (none here, and no
# registry): the same files in the same places (a unit test, test/unit/gateway-image.test.ts, compares
# APP_FILES, the user, the work folder and the entrypoint with the Dockerfile's final stage), on this
# machine's Node.js and the libraries it links, instead of the node:20-bookworm-slim base. For the
# embedded host: `kplex dev image load` the tar, and the Helm chart or a manifest can run it.
#
# Writes dist/images/gateway.tar (docker.io/kplex/gateway:VERSION) after `npm run build`; prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[gateway-image] %s\n' "$*" >&2; }
OUT=dist/images
VERSION=$(node -p 'require("./package.json").version')
REF="docker.io/kplex/gateway:$VERSION"
# What the Dockerfile's final stage copies into /app.
APP_FILES=(node_modules dist package.json bin policies)
APP_USER=node
ENTRYPOINT='["node","bin/kplex.js","gateway"]'
CMD='["--listen",":8443","--certs","/etc/kplex/certs"]'

# shellcheck source=scripts/oci-image.sh
source scripts/oci-image.sh
[ -f dist/src/cli/main.js ] || { say "no dist/: run npm run build first"; exit 1; }
mkdir -p "$OUT"
# Up to date: nothing the image holds changed since it was written.
if [ -f "$OUT/gateway.tar" ] && [ -z "$(find dist/src bin policies package.json package-lock.json -newer "$OUT/gateway.tar" -print -quit)" ]; then
  echo "$OUT/gateway.tar"
  exit 0
fi
root=$(mktemp -d "$OUT/.rootfs-gateway.XXXXXX")
trap 'rm -rf "$root"' EXIT

# Node.js and what it links, where the node image has them.
node_bin=$(command -v node)
install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
for lib in $(ldd "$node_bin" | grep -oE '/[^ ]+'); do install -D -m 0755 "$lib" "$root$lib"; done
mkdir -p "$root/etc" "$root/tmp" "$root/home/node"
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$root/etc/group"
# TLS to the host API server and to registries uses Node's own CA bundle; nothing from /etc/ssl is needed.

# The app: production dependencies only, as `npm prune --omit=dev` leaves them.
app="$root/app"
mkdir -p "$app"
cp package.json package-lock.json "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm "$app/package-lock.json"
for f in "${APP_FILES[@]}"; do
  case $f in
    node_modules|package.json) ;; # made above
    dist) mkdir -p "$app/dist" && for d in dist/*; do [ "$d" = "$OUT" ] || cp -r "$d" "$app/dist/"; done ;;
    *) cp -r "$f" "$app/" ;;
  esac
done
# The image's files must run: its Node.js loads the CLI from its own root (root may chroot here).
if [ "$(id -u)" = 0 ]; then
  chroot "$root" /usr/local/bin/node /app/bin/kplex.js --version >/dev/null || { say "the image's files do not run: chroot $root node /app/bin/kplex.js --version failed"; exit 1; }
fi
write_image gateway "$REF" "$root" "$ENTRYPOINT" "$CMD" "$APP_USER" /app
echo "$OUT/gateway.tar"
