# shellcheck shell=bash
# Two writers from one base (issue 13, item 6): two `minivmm fs mount`s of
# the same image URL (nginx with dav; no VM) at once, each changing a
# different file: both changes end in the image (today the second
# write-back silently dropped the first's). Both changing the same file:
# the second fails with "image changed since this run started", exits 12,
# keeps its stage and publishes nothing. Also the fs-max-files bound
# through the kernel's FUSE client: ENOSPC past it.
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/bench/fetch/lib.sh"
need_fs_mount
mkdir -p "$D/rootfs/etc" "$D/a" "$D/b"
printf 'original\n' >"$D/rootfs/etc/motd"
printf 'other\n' >"$D/rootfs/etc/other"
expect_status 0 "$MINIVMM" image build --rootfs "$D/rootfs" --out "$D/img" --no-disk --kernel "$kernel" --no-modules
nginx_start "$D/ng"
W=$D/ng/www
cp -a "$D/img/." "$W/"
URL=$NGINX_URL

cleanup() {
	for m in "$D/a" "$D/b"; do mountpoint -q "$m" && umount -l "$m"; done
	fetch_cleanup
}
trap cleanup EXIT

# up NAME [OPTIONS...]: mount the image on $D/NAME with write-back.
up() {
	local name=$1
	shift
	"$MINIVMM" fs mount --writeback --fetch-timeout 5 --fs-state "$D/s-$name" "$@" "$URL" \
		"$D/$name" 2>"$D/$name.log" &
	eval "pid_$name=$!"
	for _ in $(seq 1 50); do mountpoint -q "$D/$name" && return 0; sleep 0.1; done
	cat "$D/$name.log"
	fail "fs mount $name did not come up"
}
# down NAME: unmount; RC gets fs mount's status.
down() {
	umount "$D/$1" || fail "umount $1"
	eval "wait \$pid_$1"
	RC=$?
}
image_file() { # image_file PATH: its content in the image on the server
	local dg
	curl -sf "$URL/manifest.json" -o "$D/m.json" || fail "GET manifest"
	dg=$(jq -r --arg p "$1" '.entries[] | select(.path==$p) | .digest' "$D/m.json")
	[ -n "$dg" ] && [ "$dg" != null ] || { echo "(absent)"; return; }
	curl -sf "$URL/blobs/sha256/$dg"
}

up a
up b
printf 'by A\n' >"$D/a/etc/motd"
printf 'by B\n' >"$D/b/etc/new-by-b"
rm "$D/b/etc/other"
down a
[ "$RC" = 0 ] || { cat "$D/a.log"; fail "A exited $RC"; }
down b
[ "$RC" = 0 ] || { cat "$D/b.log"; fail "B exited $RC"; }
grep -q 'merged' "$D/b.log" || { cat "$D/b.log"; fail "B did not say it merged"; }
[ "$(image_file etc/motd)" = "by A" ] || fail "A's change was lost: etc/motd is '$(image_file etc/motd)'"
[ "$(image_file etc/new-by-b)" = "by B" ] || fail "B's new file is not in the image"
[ "$(image_file etc/other)" = "(absent)" ] || fail "B's deletion is not in the image"
expect_status 0 "$MINIVMM" image verify "$URL"
echo "ok: two writers, different paths: both changes in the image"

up a
up b
printf 'A again\n' >"$D/a/etc/motd"
printf 'B wants this\n' >"$D/b/etc/motd"
down a
[ "$RC" = 0 ] || { cat "$D/a.log"; fail "A exited $RC"; }
down b
[ "$RC" = 12 ] || { cat "$D/b.log"; fail "B exited $RC, expected 12 (conflict)"; }
grep -q "image changed since this run started: 'etc/motd'" "$D/b.log" || { cat "$D/b.log"; fail "no conflict message"; }
[ -f "$D/s-b/pending/manifest.json" ] || fail "B's stage is gone"
[ "$(image_file etc/motd)" = "A again" ] || fail "the conflict published B's file"
expect_status 12 "$MINIVMM" writeback "$D/s-b"
expect_output "image changed since this run started"
echo "ok: two writers, same path: the second exits 12, stage kept, nothing published"

# The bound on what may be added: 20 files, then ENOSPC (rm -rf the
# stages first: the mounts refuse a state dir holding an unpushed one).
rm -rf "$D/s-a" "$D/s-b"
up a --fs-max-files 20
made=0
for i in $(seq 1 30); do
	if ! : 2>"$D/err" >"$D/a/f$i"; then
		grep -q 'No space left on device' "$D/err" || { cat "$D/err"; fail "file $i: not ENOSPC"; }
		break
	fi
	made=$i
done
down a
[ "$made" = 20 ] || fail "--fs-max-files 20 let $made files be made"
echo "ok: --fs-max-files 20: the 21st file gets ENOSPC"
exit 0
