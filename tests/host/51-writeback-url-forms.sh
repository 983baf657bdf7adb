# shellcheck shell=bash
# Write-back to an image URL in the forms users bring (issue 13, item 5;
# issue 15): a trailing '/' and a query (how signed URLs authorize). Every
# URL derived from the image's keeps the query (blobs, both manifests),
# none has "//", and the run exits 0 only when the image on the server
# holds the change and verifies. Before, the '/' form published a manifest
# write-back itself refused and exited 0, and the query form never opened.
# Then --mode full of the written-back image (write-back drops the disk).
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/bench/fetch/lib.sh"
need_fs_mount
mkdir -p "$D/rootfs/etc" "$D/mnt"
printf 'original\n' >"$D/rootfs/etc/motd"
expect_status 0 "$MINIVMM" image build --rootfs "$D/rootfs" --out "$D/img" --no-disk --kernel "$kernel" --no-modules
nginx_start "$D/ng"
mkdir -p "$D/ng/www/img"
cp -a "$D/img/." "$D/ng/www/img/"
pid=
cleanup() { mountpoint -q "$D/mnt" && umount -l "$D/mnt"; fetch_cleanup; }
trap cleanup EXIT

# change URL NAME: mount URL, add etc/NAME, unmount; RC = fs mount's status.
change() {
	"$MINIVMM" fs mount --writeback --fetch-timeout 5 --fs-state "$D/s-$2" "$1" "$D/mnt" \
		2>"$D/$2.log" &
	pid=$!
	for _ in $(seq 1 50); do mountpoint -q "$D/mnt" && break; sleep 0.1; done
	mountpoint -q "$D/mnt" || { cat "$D/$2.log"; fail "fs mount $1 did not come up"; }
	printf '%s\n' "$2" >"$D/mnt/etc/$2"
	umount "$D/mnt" || fail "umount"
	wait "$pid"
	RC=$?
}
in_image() { # in_image NAME: the content of etc/NAME in the served image
	local dg
	dg=$(jq -r --arg p "etc/$1" '.entries[] | select(.path==$p) | .digest' "$D/ng/www/img/manifest.json")
	[ -n "$dg" ] && [ "$dg" != null ] && cat "$D/ng/www/img/blobs/sha256/$dg"
}

change "$NGINX_URL/img/" slash
[ "$RC" = 0 ] || { cat "$D/slash.log"; fail "a trailing '/' exited $RC"; }
[ "$(in_image slash)" = slash ] || fail "the trailing-'/' write-back is not in the image"
expect_status 0 "$MINIVMM" image verify "$NGINX_URL/img/"
! grep -q '//' <(awk '{print $7}' "$NGINX_LOG") || { grep '//' "$NGINX_LOG"; fail "a request with //"; }
echo "ok: trailing '/'"

: >"$NGINX_LOG"
change "$NGINX_URL/img?token=abc" query
[ "$RC" = 0 ] || { cat "$D/query.log"; fail "a URL with a query exited $RC"; }
[ "$(in_image query)" = query ] || fail "the query-URL write-back is not in the image"
[ "$(in_image slash)" = slash ] || fail "the earlier change was lost"
for what in 'GET /img/manifest\.json\.zst' 'PUT /img/blobs/sha256/[0-9a-f]{64}' 'PUT /img/manifest\.json' 'PUT /img/manifest\.json\.zst'; do
	grep -Eq "\"$what\\?token=abc HTTP" "$NGINX_LOG" || { cat "$NGINX_LOG"; fail "no '$what?token=abc'"; }
done
grep -E '"(GET|PUT|HEAD) ' "$NGINX_LOG" | grep -v 'token=abc' && fail "a request without the query"
jq -e '.blobs == "blobs/sha256/"' "$D/ng/www/img/manifest.json" >/dev/null ||
	fail "the pushed manifest's blobs location is $(jq .blobs "$D/ng/www/img/manifest.json"), not relative"
echo "ok: a query on every request, the blobs location relative again"

# The written-back image names no full-copy disk (one of the old tree would
# boot the old files): --mode full says so before fetching anything.
: >"$NGINX_LOG"
expect_status 12 "$MINIVMM" run --image-url "$NGINX_URL/img/" --mode full
expect_output 'has no disk image.*minivmm image build'
! grep -q 'blobs/' "$NGINX_LOG" || fail "--mode full fetched blobs of an image it cannot boot"
echo "ok: --mode full of a written-back image names the rebuild"
exit 0
