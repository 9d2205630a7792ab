# Shared by the image scripts: write_image turns a root folder into an OCI image layout in one tar,
# named as people type the image, without a container engine. Callers set OUT (the folder the tar goes
# to) and define say().
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
json_array() { local out="" a; for a in "$@"; do out+="${out:+,}\"$a\""; done; printf '[%s]' "$out"; }

# write_image NAME REF ROOTFS ENTRYPOINT-JSON CMD-JSON: the OCI layout of ROOTFS as $OUT/NAME.tar.
write_image() {
  local name=$1 ref=$2 root=$3 entrypoint=$4 cmd=$5 user=${6:-} workdir=${7:-/}
  local work; work=$(mktemp -d "$OUT/.$name.XXXXXX")
  local blobs="$work/layout/blobs/sha256"
  mkdir -p "$blobs"
  # Reproducible: sorted names, fixed times and owners, gzip without a timestamp.
  tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/layer.tar" .
  local diff_id; diff_id=$(sha "$work/layer.tar")
  gzip -n -9 "$work/layer.tar"
  local layer; layer=$(sha "$work/layer.tar.gz")
  local layer_size; layer_size=$(size "$work/layer.tar.gz")
  mv "$work/layer.tar.gz" "$blobs/$layer"

  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":%s,"Cmd":%s,"WorkingDir":"%s","User":"%s"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"kplex scripts/%s"}]}' \
    "$entrypoint" "$cmd" "$workdir" "$user" "$diff_id" "$(basename "$0")" >"$work/config.json"
  local config; config=$(sha "$work/config.json")
  local config_size; config_size=$(size "$work/config.json")
  mv "$work/config.json" "$blobs/$config"

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
  local manifest; manifest=$(sha "$work/manifest.json")
  local manifest_size; manifest_size=$(size "$work/manifest.json")
  mv "$work/manifest.json" "$blobs/$manifest"

  # containerd names an imported image after io.containerd.image.name; the OCI annotation keeps the tag.
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$ref" "${ref##*:}" >"$work/layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
  tar -C "$work/layout" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/image.tar" oci-layout index.json blobs
  mv -f "$work/image.tar" "$OUT/$name.tar"
  rm -rf "$work"
  say "$ref -> $OUT/$name.tar ($(du -h "$OUT/$name.tar" | cut -f1))"
}

