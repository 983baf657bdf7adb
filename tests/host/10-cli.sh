# The command line: help, version, usage errors (exit 2), no KVM needed.
. "$REPO/tests/sandbox/lib.sh"
expect_status 0 "$MINIVMM" --help
expect_output 'run +boot a virtual machine'
expect_status 0 "$MINIVMM" --version
expect_output '^minivmm [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{7,}|v?[0-9][^ ]*-g[0-9a-f]{7,})(-dirty)?|unknown\)$'
# Built from this checkout (make check builds first): the commit is HEAD's.
if head=$(git -C "$REPO" rev-parse --short=7 HEAD 2>/dev/null) && [ "$(dirname "$MINIVMM")" = "$REPO/build" ]; then
	expect_output "commit ([^ ]*-g)?$head"
fi
expect_status 0 "$MINIVMM" run --help
expect_output '--memory SIZE'
# A bad command line is one line with the one error prefix and where to
# look, not the whole help (issue 15); --help still prints the help.
one_line_usage() { # one_line_usage PATTERN: $OUT is that one error line
	[ "$(printf '%s\n' "$OUT" | wc -l)" = 1 ] || { echo "$OUT" >&2; fail "a usage error of more than one line"; }
	expect_output "^minivmm: error: $1"
}
expect_status 2 "$MINIVMM" run --bogus
one_line_usage 'run: unknown option --bogus \(see minivmm run --help\)$'
expect_status 2 "$MINIVMM" run --bogus=1
one_line_usage 'run: unknown option --bogus \(see minivmm run --help\)$'
expect_status 2 "$MINIVMM" run -Z
one_line_usage 'run: unknown option -Z '
expect_status 2 "$MINIVMM" run --kernel
one_line_usage 'run: option --kernel needs a value'
expect_status 2 "$MINIVMM" run --kernel /etc/passwd extra
one_line_usage "run: unexpected argument 'extra' \(see minivmm run --help\)"
expect_status 2 "$MINIVMM" image build --bogus
one_line_usage 'image build: unknown option --bogus \(see minivmm image build --help\)'
expect_status 2 "$MINIVMM" image nosuchsub
one_line_usage "image: unknown subcommand 'nosuchsub'"
expect_status 2 "$MINIVMM" nosuchcommand
one_line_usage "unknown command 'nosuchcommand' \(see minivmm --help\)"
expect_status 2 "$MINIVMM" fetch
one_line_usage 'fetch: exactly one URL is needed'
expect_status 2 "$MINIVMM" fs mount onlyone
one_line_usage 'fs mount: .*MOUNTPOINT'
expect_status 2 "$MINIVMM" writeback
one_line_usage 'writeback: .*STATE_DIR'
expect_status 2 "$MINIVMM" image inspect
one_line_usage 'image inspect: give one image directory or URL'
expect_status 2 "$MINIVMM" cache stats extra
one_line_usage "cache stats: unexpected argument 'extra'"
expect_status 2 "$MINIVMM" run --mode full
one_line_usage 'run: --mode needs --image-url URL'
expect_status 0 "$MINIVMM" image build --help
expect_output '--rootfs'
# Every error line, whatever the command, starts with the one prefix.
expect_status 12 "$MINIVMM" image inspect "$TMPDIR/no-such-image"
expect_output '^minivmm: error: image inspect: '
expect_status 4 "$MINIVMM" run --kernel "$TMPDIR/no-such-kernel"
expect_output "^minivmm: error: cannot open $TMPDIR/no-such-kernel"
expect_status 2 "$MINIVMM" run --kernel x --memory 12Q
expect_output "is not a size"
expect_status 2 "$MINIVMM" run --kernel x --cpus 0
expect_status 2 "$MINIVMM" run --kernel x --cpus 65
expect_status 2 "$MINIVMM"
expect_status 2 "$MINIVMM" run
one_line_usage 'run: --kernel FILE .*is required'

# Without /dev/kvm (a private mount namespace with an empty /dev): a message
# that names /dev/kvm, says why it may be missing and points to the sandbox.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
	expect_status 4 unshare -m sh -c "mount -t tmpfs none /dev && exec '$MINIVMM' run --kernel '$REPO/build/guest-tests/hello.elf'"
	expect_output 'cannot open /dev/kvm'
	expect_output 'hardware virtualization'
	expect_output 'does not offer nested'
	expect_output 'kvm.*group'
	expect_output 'scripts/sandbox'
fi

# More guest RAM than the host has is refused before anything starts (the
# guest would otherwise push the host into swap or the OOM killer mid-run).
host_mib=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
ask_gib=$((host_mib / 1024 * 2 + 2))
[ "$ask_gib" -le 1024 ] || ask_gib=1024
expect_status 2 "$MINIVMM" run --kernel x --memory "${ask_gib}G"
expect_output "more guest memory than this host has"

# What the user named is checked before anything privileged or slow (issue
# 15): a missing or foreign kernel is named as such, not reported as a
# missing /dev/kvm, and --stats must be writable before the run starts.
expect_status 4 "$MINIVMM" run --kernel "$TMPDIR/no-such-kernel"
expect_output "cannot open $TMPDIR/no-such-kernel: No such file"
echo "$OUT" | grep -q /dev/kvm && fail "a missing kernel was reported as a KVM problem"
expect_status 4 "$MINIVMM" run --kernel /etc/passwd
expect_output '/etc/passwd is not a kernel minivmm can boot'
echo "$OUT" | grep -q /dev/kvm && fail "a foreign kernel file was reported as a KVM problem"
expect_status 2 "$MINIVMM" run --kernel /etc/passwd --stats "$TMPDIR/no-such-dir/stats.json"
expect_output "--stats $TMPDIR/no-such-dir/stats.json: No such file"
expect_status 2 "$MINIVMM" run --image-url http://127.0.0.1:9/img --stats "$TMPDIR/no-such-dir/s.json"
expect_output "--stats"

# --memory 512 is 512 MiB, as in QEMU and kvmtool (it passes the option
# check and meets the kernel check); below the minimum names the minimum.
expect_status 4 "$MINIVMM" run --kernel /etc/passwd --memory 512
expect_output 'is not a kernel minivmm can boot'
expect_status 2 "$MINIVMM" run --kernel /etc/passwd --memory 12
expect_output 'at least 16M'
