# shellcheck shell=bash
# Sparse stays sparse over HTTP (issue 13, item 8): a file of 256 MiB with
# 1 MiB of data in the middle, made through `fs mount URL` (truncate, then
# a write), is written back to a real nginx (dav PUT) as a packed blob
# (manifest version 2): about 1 MiB goes up, not 256 MiB of zeros. The
# image verifies, and a fresh mount of the URL reads the file back byte
# for byte while fetching about 1 MiB. Before, the file's one blob was PUT
# whole (256 MiB up) and a read of the zeros fetched them again.
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/bench/fetch/lib.sh"
need_fs_mount
MIB=$((1 << 20))
mkdir -p "$D/rootfs/etc" "$D/mnt"
printf 'original\n' >"$D/rootfs/etc/motd"
expect_status 0 "$MINIVMM" image build --rootfs "$D/rootfs" --out "$D/img" --no-disk --kernel "$kernel" --no-modules
nginx_start "$D/ng"
mkdir -p "$D/ng/www/img"
cp -a "$D/img/." "$D/ng/www/img/"
URL=$NGINX_URL/img/
cleanup() { mountpoint -q "$D/mnt" && umount -l "$D/mnt"; fetch_cleanup; }
trap cleanup EXIT

# mount_url STATE LOG [OPTIONS...]: fs mount URL on $D/mnt in the background.
mount_url() {
	local state=$1 log=$2
	shift 2
	"$MINIVMM" fs mount "$@" --fetch-timeout 10 --fs-state "$D/$state" "$URL" "$D/mnt" \
		2>"$D/$log" &
	pid=$!
	for _ in $(seq 1 100); do mountpoint -q "$D/mnt" && break; sleep 0.1; done
	mountpoint -q "$D/mnt" || { cat "$D/$log"; fail "fs mount $URL did not come up"; }
}

# The file, made the way a guest makes one, and the same bytes locally.
head -c $MIB /dev/urandom >"$D/data"
truncate -s 256M "$D/want"
dd if="$D/data" of="$D/want" bs=1M seek=128 conv=notrunc status=none
mount_url s-write write.log --writeback
truncate -s 256M "$D/mnt/big"
dd if="$D/data" of="$D/mnt/big" bs=1M seek=128 conv=notrunc status=none
truncate -s 64M "$D/mnt/holes" # zeros only: the empty blob
umount "$D/mnt" || fail "umount"
wait "$pid"
rc=$?
[ "$rc" = 0 ] || { cat "$D/write.log"; fail "the write-back exited $rc"; }

# What went up: the blobs PUT, by their size on the server.
up=0
for b in $(grep -oE '"PUT /img/blobs/sha256/[0-9a-f]{64}' "$NGINX_LOG" | sed 's#.*/##' | sort -u); do
	up=$((up + $(stat -c %s "$D/ng/www/img/blobs/sha256/$b")))
done
echo "uploaded blobs: $up bytes"
[ "$up" -ge "$MIB" ] || fail "only $up bytes of blobs uploaded: the data is missing"
[ "$up" -le $((MIB + 64 * 1024)) ] || fail "$up bytes of blobs uploaded for 1 MiB of data (the zeros went up)"
said=$(grep -oE 'written back: [0-9]+ bytes uploaded' "$D/write.log" | grep -oE '[0-9]+')
[ -n "$said" ] && [ "$said" -le $((2 * MIB)) ] || { cat "$D/write.log"; fail "write-back says '$said' bytes uploaded"; }
m=$D/ng/www/img/manifest.json
jq -e '.version == 2' "$m" >/dev/null || fail "the manifest is not version 2: $(jq .version "$m")"
blob=$(jq -r '.entries[] | select(.path=="big") | .blob' "$m")
[ -n "$blob" ] && [ "$blob" != null ] || fail "big has no packed blob in the manifest"
[ "$(stat -c %s "$D/ng/www/img/blobs/sha256/$blob")" = "$MIB" ] || fail "big's packed blob is not 1 MiB"
[ "$(jq -r '.entries[] | select(.path=="holes") | .blob' "$m")" = \
  "$(sha256sum </dev/null | cut -c1-64)" ] || fail "a file of zeros is not the empty blob"
echo "ok: 256 MiB with 1 MiB of data wrote back as a 1 MiB packed blob"

expect_status 0 "$MINIVMM" image verify "$URL"
expect_output 'verify: OK'
expect_status 0 "$MINIVMM" image inspect "$URL"
expect_output 'packed: *2 files stored without their 334495744 bytes of zero chunks'
echo "ok: the image verifies"

# Read back through a fresh mount and an empty cache.
export XDG_CACHE_HOME=$D/cache2
: >"$NGINX_LOG"
mount_url s-read read.log
cmp "$D/want" "$D/mnt/big" || fail "big reads back different"
cmp <(head -c 64M /dev/zero) "$D/mnt/holes" || fail "holes reads back different"
umount "$D/mnt" || fail "umount"
wait "$pid"
down=$(awk '$6 == "\"GET" && $7 ~ /blobs/ {s += $10} END {print s + 0}' "$NGINX_LOG")
echo "fetched blobs: $down bytes"
[ "$down" -ge "$MIB" ] && [ "$down" -le $((MIB + 64 * 1024)) ] ||
	{ cat "$NGINX_LOG"; fail "reading big fetched $down bytes of blobs, not about 1 MiB"; }
echo "ok: read back byte for byte, fetching its 1 MiB of data"
exit 0
