# shellcheck shell=bash
# Write-back never loses a change silently (issue 13, items 4, 5, 9, 10),
# with real programs writing into `minivmm fs mount` of an image URL (the
# fetch backend and write-back target of `run --image-url`; no VM):
#   405  nginx without dav refuses the PUT: exit 12, the stage kept, the
#        retry command printed; the same stage pushed later succeeds.
#   cut  a server that drops the connection in the middle of every upload:
#        exit 12, the stage kept, the server's image unchanged.
#   deep a directory chain past 4,095 bytes: mkdir fails with ENAMETOOLONG
#        at the limit, and the ordinary file written beside it reaches the
#        image (today: all changes dropped, exit 0).
#   blob a truncated blob already on the server under the right name is
#        uploaded again (HTTP, by size) and replaced (local, by digest).
#   quote a state directory whose name holds a quote (the old shell
#        command removed a sibling directory).
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/bench/fetch/lib.sh"
need_fs_mount
command -v python3 >/dev/null || skip "no python3"
mnt=$D/mnt
mkdir -p "$D/rootfs/etc" "$mnt"
printf 'original\n' >"$D/rootfs/etc/motd"
expect_status 0 "$MINIVMM" image build --rootfs "$D/rootfs" --out "$D/img" --no-disk --kernel "$kernel" --no-modules

nginx_start "$D/ng"
W=$D/ng/www
cp -a "$D/img/." "$W/"
DAV=$NGINX_URL
# The same files from an nginx without dav: PUT is 405.
P2=$(free_port)
nginx_also "$D/ng" "$P2" nodav nodav
nodav_pid=$NGINX_ALSO_PID
NODAV=http://127.0.0.1:$P2

# A server that serves GET/HEAD from $W and cuts every PUT after 1 KiB.
PCUT=$(free_port)
python3 - "$PCUT" "$W" <<'PY' 2>"$D/cut.log" &
import http.server, os, sys
root = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        sys.stderr.write("%s %s\n" % (self.command, self.path)); sys.stderr.flush()
    def do_HEAD(self): self.do_GET()
    def do_GET(self):
        p = os.path.join(root, self.path.lstrip("/"))
        if ".." in self.path or not os.path.isfile(p):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        data = open(p, "rb").read()
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
        if self.command == "GET": self.wfile.write(data)
    def do_PUT(self):
        sys.stderr.write("PUT %s cut\n" % self.path); sys.stderr.flush()
        self.rfile.read(min(1024, int(self.headers.get("Content-Length", "0"))))
        self.close_connection = True
        self.connection.shutdown(2)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
FETCH_PIDS+=($!)
wait_port "$PCUT" || fail "the cutting server did not start"
CUT=http://127.0.0.1:$PCUT

cleanup() { mountpoint -q "$mnt" && umount -l "$mnt"; fetch_cleanup; }
trap cleanup EXIT

# mount_do URL STATE SCRIPT [ARGS...]: mount URL with write-back, run
# SCRIPT (bash, $1 the mount point) in it, unmount; MRC gets the status.
mount_do() {
	local url=$1 state=$2 script=$3
	shift 3
	"$MINIVMM" fs mount --writeback --fetch-timeout 3 --fs-state "$state" "$url" "$mnt" \
		"$@" 2>"$D/mount.log" &
	local pid=$!
	for _ in $(seq 1 50); do mountpoint -q "$mnt" && break; sleep 0.1; done
	mountpoint -q "$mnt" || { cat "$D/mount.log"; fail "fs mount $url did not come up"; }
	bash -c "$script" _ "$mnt" || { umount "$mnt"; wait "$pid"; fail "the script in the mount failed"; }
	sync
	umount "$mnt" || fail "umount"
	wait "$pid"
	MRC=$?
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
v0=$(sha "$W/manifest.json.zst")

# --- 405: nginx without dav ---
mount_do "$NODAV" "$D/s405" 'printf "first change\n" >"$1/etc/motd"'
[ "$MRC" = 12 ] || { cat "$D/mount.log"; fail "405: fs mount exited $MRC, expected 12"; }
grep -q "to retry: minivmm writeback $D/s405" "$D/mount.log" || { cat "$D/mount.log"; fail "405: no retry command"; }
grep -q '405' "$D/mount.log" || { cat "$D/mount.log"; fail "405: the status is not named"; }
[ -f "$D/s405/pending/manifest.json" ] || fail "405: the stage is gone"
[ "$(sha "$W/manifest.json.zst")" = "$v0" ] || fail "405: the image changed"
expect_status 12 "$MINIVMM" writeback --fetch-timeout 2 "$D/s405"
expect_output "to retry: minivmm writeback $D/s405"
[ -f "$D/s405/pending/manifest.json" ] || fail "405: writeback lost the stage"
# The server fixed (dav on, same URL): the kept stage goes through.
kill "$nodav_pid"
wait "$nodav_pid" 2>/dev/null
nginx_also "$D/ng" "$P2" fixed
expect_status 0 "$MINIVMM" writeback "$D/s405"
curl -sf "$DAV/manifest.json" -o "$D/m.json" || fail "GET manifest"
dg=$(jq -r '.entries[] | select(.path=="etc/motd") | .digest' "$D/m.json")
[ "$(curl -sf "$DAV/blobs/sha256/$dg")" = "first change" ] || fail "405: the retried change is not there"
echo "ok: 405 -> exit 12, stage kept, retry printed; the kept stage pushed later"

# --- a connection cut in the middle of every upload ---
v1=$(sha "$W/manifest.json.zst")
mount_do "$CUT" "$D/scut" 'head -c 300000 /dev/urandom >"$1/etc/big"'
[ "$MRC" = 12 ] || { cat "$D/mount.log"; fail "cut: fs mount exited $MRC, expected 12"; }
grep -q "to retry: minivmm writeback $D/scut" "$D/mount.log" || { cat "$D/mount.log"; fail "cut: no retry command"; }
[ -f "$D/scut/pending/manifest.json" ] || fail "cut: the stage is gone"
[ "$(sha "$W/manifest.json.zst")" = "$v1" ] || fail "cut: the image changed"
grep -q '^PUT ' "$D/cut.log" || fail "cut: no PUT reached the server"
echo "ok: a cut upload -> exit 12, stage kept, image unchanged"

# --- a chain of directories past the manifest's 4,095 bytes ---
mount_do "$DAV" "$D/sdeep" '
cd "$1" || exit 1
printf "ordinary\n" >ordinary.txt
python3 - >"'"$D"'/deep.out" <<PY
import errno, os
os.mkdir("deep"); os.chdir("deep")
for i in range(3000):
    try:
        os.mkdir("a"); os.chdir("a")
    except OSError as e:
        print(i, errno.errorcode[e.errno]); break
else:
    print(3000, "none")
PY
'
[ "$MRC" = 0 ] || { cat "$D/mount.log"; fail "deep: fs mount exited $MRC, expected 0"; }
# "deep" then "/a" x 2045 is 4,094 bytes: the 2,046th "/a" would pass 4,095.
[ "$(cat "$D/deep.out")" = "2045 ENAMETOOLONG" ] || fail "deep: mkdir gave '$(cat "$D/deep.out")'"
curl -sf "$DAV/manifest.json" -o "$D/m.json" || fail "GET manifest"
jq -e '.entries[] | select(.path=="ordinary.txt")' "$D/m.json" >/dev/null || fail "deep: ordinary.txt lost"
[ "$(jq -r '[.entries[] | select(.path | startswith("deep"))] | length' "$D/m.json")" = 2046 ] ||
	fail "deep: the chain is not in the image"
expect_status 0 "$MINIVMM" image verify "$DAV"
echo "ok: mkdir past 4,095 bytes -> ENAMETOOLONG; every other change uploaded"

# --- a truncated blob already on the server under the right name ---
printf 'content whose blob is already there, cut short\n' >"$D/victim.txt"
hex=$(sha "$D/victim.txt")
head -c 10 "$D/victim.txt" >"$W/blobs/sha256/$hex"
mount_do "$DAV" "$D/sblob" "cp '$D/victim.txt' \"\$1/etc/victim.txt\""
[ "$MRC" = 0 ] || { cat "$D/mount.log"; fail "blob: fs mount exited $MRC"; }
[ "$(sha "$W/blobs/sha256/$hex")" = "$hex" ] || fail "blob: the truncated blob on the server was trusted (HTTP)"
expect_status 0 "$MINIVMM" image verify "$DAV"
# A local image: the store's copy is hashed before it is trusted.
cp -a "$W" "$D/local"
printf 'a local truncated blob\n' >"$D/victim2.txt"
hex=$(sha "$D/victim2.txt")
head -c 5 "$D/victim2.txt" >"$D/local/blobs/sha256/$hex"
mount_do "$D/local/manifest.json" "$D/sblob2" "cp '$D/victim2.txt' \"\$1/etc/victim2.txt\""
[ "$MRC" = 0 ] || { cat "$D/mount.log"; fail "blob: fs mount (local) exited $MRC"; }
[ "$(sha "$D/local/blobs/sha256/$hex")" = "$hex" ] || fail "blob: the truncated blob in the local store was trusted"
expect_status 0 "$MINIVMM" image verify "$D/local"
echo "ok: truncated blobs already in the store are uploaded again (HTTP) and replaced (local)"

# --- a state directory whose name holds a quote ---
mkdir -p "$D/victim"
: >"$D/victim/keep"
mount_do "$DAV" "$D/victim' 'x" 'printf "quoted\n" >"$1/etc/quoted"'
[ "$MRC" = 0 ] || { cat "$D/mount.log"; fail "quote: fs mount exited $MRC"; }
[ -f "$D/victim/keep" ] || fail "quote: a sibling of the state directory was removed"
echo "ok: a state directory named with a quote"
exit 0
