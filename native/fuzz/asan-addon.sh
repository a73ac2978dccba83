#!/usr/bin/env bash
# The addon built with AddressSanitizer + UndefinedBehaviorSanitizer (gcc), in its
# own node-gyp tree so it never replaces build/Release, and the unit tests run
# against it.
#   native/fuzz/asan-addon.sh build          -> fuzz-out/asan-addon/build/Release/flatnet.node
#   native/fuzz/asan-addon.sh test [FILES]   unit tests (default test/unit/*.test.ts) on that build,
#                                            rebuilt first when native/ or binding.gyp changed since
# NODEDIR: node headers (default /usr, as the main build finds them here).
# node itself is not instrumented, so the ASan runtime is preloaded; leak checking is
# off (node's own allocations at exit are not ours), any other report aborts the test.
# Namespace tests run too (their daemons inherit the addon and the preload), but so does
# every tool they start: iproute2's `ip route get` trips ASan itself (strncpy-param-overlap
# in print_route), so mtu.test.ts fails here, and RSS-growth checks fail on ASan's quarantine
# of freed memory (control-channel, control-socket). CI runs the two that pass.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/fuzz-out/asan-addon"
addon="$dir/build/Release/flatnet.node"
cmd=${1:-build}
shift || true

build() {
  mkdir -p "$dir"
  # native/ linked in, so the sources keep their paths: as ../../native/x.cc both addons' objects
  # would land on one path (obj.target/native/x.o), and a parallel build links one with the other's.
  ln -sfn "$root/native" "$dir/native"
  # binding.gyp with sanitizer flags added.
  node -e '
    const fs = require("fs")
    const gyp = Function("return (" + fs.readFileSync(process.argv[1], "utf8") + ")")()
    // The addons only: flatnet-cni is linked statically, which ASan cannot be.
    gyp.targets = gyp.targets.filter((t) => t.type !== "executable")
    for (const t of gyp.targets) {
      const san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"]
      t.cflags_cc = t.cflags_cc.filter((f) => !/^-O/.test(f)).concat(["-O1", ...san])
      t.ldflags = (t.ldflags || []).concat(["-fsanitize=address,undefined"])
    }
    fs.writeFileSync(process.argv[2], JSON.stringify(gyp, null, 2))
  ' "$root/binding.gyp" "$dir/binding.gyp"
  # node-addon-api is found from the repository's node_modules.
  (cd "$dir" && NODE_PATH="$root/node_modules" "$root/node_modules/.bin/node-gyp" rebuild -j max --nodedir="${NODEDIR:-/usr}" >"$dir/build.log" 2>&1) \
    || { tail -30 "$dir/build.log"; exit 1; }
  echo "built $addon"
}

# Missing, or older than a source: a stale build fails tests for functions it lacks.
stale() {
  [ ! -f "$addon" ] || [ -n "$(find "$root/binding.gyp" "$root/native" -newer "$addon" \
    \( -name '*.cc' -o -name '*.h' -o -name binding.gyp \) -print -quit)" ]
}

case "$cmd" in
  build) build ;;
  test)
    if stale; then build; fi
    files=("$@")
    [ ${#files[@]} -gt 0 ] || files=("$root"/test/unit/*.test.ts)
    cd "$root"
    FLATNET_ADDON="$addon" FLATNET_TESTING_ADDON="${addon%/*}/flatnet_testing.node" LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
      ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      npx tap --disable-coverage "${files[@]}"
    ;;
  *) echo "usage: asan-addon.sh build | test [FILES]" >&2; exit 2 ;;
esac
