#!/usr/bin/env bash
# Builds one libFuzzer target with ASan + UBSan and runs it for a bounded time.
#   native/fuzz/run.sh TARGET [SECONDS]     TARGET: receive | gso | gro | nflog | wg | all
# Binaries, the growing corpus and crash inputs go to fuzz-out/ (ignored by git);
# the checked-in seeds in native/fuzz/corpus/TARGET are read, never written.
# Exits non-zero if the target crashes (a sanitizer report or a broken invariant);
# reproduce with: fuzz-out/fuzz_TARGET fuzz-out/crashes/TARGET-crash-...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${1:?usage: run.sh receive|gso|gro|nflog|wg|all [seconds]}
seconds=${2:-60}
if [ "$target" = all ]; then
  for t in receive gso gro nflog wg; do "$0" "$t" "$seconds"; done
  exit 0
fi
case "$target" in receive|gso|gro|nflog|wg) ;; *) echo "unknown target $target (receive, gso, gro, nflog, wg)" >&2; exit 2 ;; esac
CXX=${CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "$CXX not found: apt-get install clang (libFuzzer ships with it)" >&2; exit 2; }
out="$root/fuzz-out"
mkdir -p "$out/corpus/$target" "$out/crashes"
bin="$out/fuzz_$target"
# The packet modules only: no N-API, no syscalls. WireGuard's sessions seal and open with the
# system's OpenSSL here (libssl-dev), the same library the addon reaches through node.
crypto=()
if [ "$target" = wg ]; then
  [ -e /usr/include/openssl/evp.h ] || { echo "OpenSSL headers not found: apt-get install libssl-dev" >&2; exit 2; }
  crypto=("$root/native/wg_session.cc" -lcrypto)
fi
"$CXX" -std=c++20 -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/native" "$here/fuzz_$target.cc" \
  "$root"/native/{packet,checksum,partial_checksum,gso,gro,vxlan,fib,peer_index,admit,nflog}.cc "${crypto[@]}" -o "$bin"
echo "fuzz $target: ${seconds}s"
# -print_final_stats: the closing "stat::number_of_executed_units" is the figure CI reports.
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
  "$bin" "$out/corpus/$target" "$here/corpus/$target" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
  -print_final_stats=1 -artifact_prefix="$out/crashes/$target-" 2>&1 \
  | grep -E '^(stat::number_of_executed_units|stat::peak_rss|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY|.*runtime error|Test unit written|artifact_prefix|INFO: Seed|.*deadly signal)' \
  ; exit "${PIPESTATUS[0]}"
