#!/usr/bin/env bash
# Fetch benches (numbers, not pass/fail), against nginx on 127.0.0.1:
#  1. a 1 GiB blob: `minivmm fetch --sha256` into the cache (verified while
#     streaming, fsynced, renamed) vs `curl -o` of the same URL, alternating,
#     best of $ROUNDS each; ratio = curl time / minivmm time.
#  2. 10,000 blobs of 4 KiB: the run's prefetcher (fs/prefetch.c, $PARALLEL
#     threads of cache_get_blob) vs one cache_get_blob at a time (an fsync
#     each), each into an empty cache; then both without fsync, then
#     1,000 from a server that thinks 2 ms per request (python: its own
#     limit is about 1,500 requests/s).
# usage: make bench-fetch   (or BUILD=build bench/fetch/run.sh)
# Env: SIZE_MB (1024), NSMALL (10000), ROUNDS (3), PARALLEL (32).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
MINIVMM=$REPO/$BUILD/minivmm
FETCHTOOL=$REPO/$BUILD/fetchtool
SIZE_MB=${SIZE_MB:-1024}
NSMALL=${NSMALL:-10000}
ROUNDS=${ROUNDS:-3}
PARALLEL=${PARALLEL:-32}
fail() { echo "bench: $*" >&2; exit 1; }
skip() { echo "bench: skipped: $*" >&2; exit 0; }
[ -x "$MINIVMM" ] && [ -x "$FETCHTOOL" ] || fail "build first: make BUILD=$BUILD $BUILD/minivmm $BUILD/fetchtool"
TMPDIR=$(mktemp -d "${BENCH_DIR:-/var/tmp}/minivmm-bench.XXXXXX")
export TMPDIR
. "$REPO/bench/fetch/lib.sh"
trap 'fetch_cleanup; rm -rf "$TMPDIR"' EXIT
trap 'exit 1' INT TERM PIPE HUP
D=$TMPDIR
nginx_start "$D/ng" 2
W=$D/ng/www
mkdir -p "$W/blobs"

now() { date +%s.%N; }
best() { sort -g | head -n 1; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "== $SIZE_MB MiB blob, nginx on loopback ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
head -c $((SIZE_MB << 20)) /dev/urandom >"$W/big"
H=$(sha256sum "$W/big" | cut -d' ' -f1)
cat "$W/big" >/dev/null # every run starts with the server's file in the page cache
: >"$D/t_curl"; : >"$D/t_curlsync"; : >"$D/t_vmm"
for r in $(seq "$ROUNDS"); do
	rm -f "$D/curl.out"; sync
	t0=$(now); curl -s -o "$D/curl.out" "$NGINX_URL/big"; t1=$(now)
	echo "$t1 - $t0" | bc -l >>"$D/t_curl"
	rm -f "$D/curl.out"; sync
	t0=$(now); curl -s -o "$D/curl.out" "$NGINX_URL/big"; sync "$D/curl.out"; t1=$(now)
	echo "$t1 - $t0" | bc -l >>"$D/t_curlsync"
	rm -rf "$D/cache" "$D/curl.out"; sync
	t0=$(now); "$MINIVMM" fetch "$NGINX_URL/big" --sha256 "$H" --cache-dir "$D/cache" 2>"$D/vmm.log"; t1=$(now)
	echo "$t1 - $t0" | bc -l >>"$D/t_vmm"
	cmp -s "$D/cache/blobs/sha256/$H" "$W/big" || fail "cached blob differs"
done
tc=$(best <"$D/t_curl"); tcs=$(best <"$D/t_curlsync"); tv=$(best <"$D/t_vmm")
row() { printf '%-38s %7.3f s  %7.1f MiB/s  (rounds: %s)\n' "$1" "$2" "$(echo "$SIZE_MB / $2" | bc -l)" "$(tr '\n' ' ' <"$3")"; }
row "curl -o (page cache, no fsync)" "$tc" "$D/t_curl"
row "curl -o; sync FILE (durable)" "$tcs" "$D/t_curlsync"
row "minivmm fetch --sha256 (cache, durable)" "$tv" "$D/t_vmm"
printf 'ratio curl -o / minivmm:        %.2f best, %.2f median\n' "$(echo "$tc / $tv" | bc -l)" \
	"$(echo "$(median <"$D/t_curl") / $(median <"$D/t_vmm")" | bc -l)"
printf 'ratio curl -o+sync / minivmm:   %.2f best, %.2f median\n' "$(echo "$tcs / $tv" | bc -l)" \
	"$(echo "$(median <"$D/t_curlsync") / $(median <"$D/t_vmm")" | bc -l)"
rm -rf "$D/cache" "$W/big"

echo "== $NSMALL blobs of 4 KiB"
python3 - "$W/blobs" "$NSMALL" >"$D/list" <<'PY'
import hashlib, os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    data = os.urandom(4096)
    h = hashlib.sha256(data).hexdigest()
    open(os.path.join(d, h), "wb").write(data)
    print(h, len(data))
PY
before=$(wc -l <"$NGINX_LOG")
FETCH_PARALLEL=$PARALLEL "$FETCHTOOL" prefetch "$D/c1" "$NGINX_URL/blobs" "$D/list" 2>"$D/pf.log" | tee "$D/pf.out"
mid=$(wc -l <"$NGINX_LOG")
"$FETCHTOOL" serial "$D/c2" "$NGINX_URL/blobs" "$D/list" 2>"$D/se.log" | tee "$D/se.out"
after=$(wc -l <"$NGINX_LOG")
grep -h '^stats' "$D/pf.log" "$D/se.log"
echo "requests: parallel $((mid - before)), serial $((after - mid))"
tp=$(sed -E 's/.* in ([0-9.]+) s.*/\1/' "$D/pf.out")
ts=$(sed -E 's/.* in ([0-9.]+) s.*/\1/' "$D/se.out")
printf 'speedup (serial time / parallel time, %d in flight): %.2f\n' "$PARALLEL" "$(echo "$ts / $tp" | bc -l)"

echo "== the same without fsync (CACHE_NOSYNC): parallelism alone, on loopback"
FETCH_PARALLEL=$PARALLEL CACHE_NOSYNC=1 "$FETCHTOOL" prefetch "$D/c5" "$NGINX_URL/blobs" "$D/list" 2>/dev/null | tee "$D/pf3.out"
CACHE_NOSYNC=1 "$FETCHTOOL" serial "$D/c6" "$NGINX_URL/blobs" "$D/list" 2>/dev/null | tee "$D/se3.out"
tp=$(sed -E 's/.* in ([0-9.]+) s.*/\1/' "$D/pf3.out")
ts=$(sed -E 's/.* in ([0-9.]+) s.*/\1/' "$D/se3.out")
printf 'speedup without fsync: %.2f\n' "$(echo "$ts / $tp" | bc -l)"

echo "== 1000 of them from a server with 2 ms of think time per request (faulty.py slow/0.002)"
fault_start "$W/blobs"
head -n 1000 "$D/list" >"$D/list1k"
FETCH_PARALLEL=$PARALLEL CACHE_NOSYNC=1 "$FETCHTOOL" prefetch "$D/c3" "$FAULT_URL/slow/0.002" "$D/list1k" 2>/dev/null | tee "$D/pf2.out"
CACHE_NOSYNC=1 "$FETCHTOOL" serial "$D/c4" "$FAULT_URL/slow/0.002" "$D/list1k" 2>/dev/null | tee "$D/se2.out"
tp=$(sed -E 's/.* in ([0-9.]+) s.*/\1/' "$D/pf2.out")
ts=$(sed -E 's/.* in ([0-9.]+) s.*/\1/' "$D/se2.out")
printf 'speedup with latency: %.2f\n' "$(echo "$ts / $tp" | bc -l)"
