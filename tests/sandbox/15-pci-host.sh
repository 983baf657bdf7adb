# PCI configuration mechanism #1 with only a host bridge (devices/pci_host.c):
# a bare-metal probe, then the stock kernel allowed to probe PCI (any pci=
# option keeps minivmm from adding pci=off) finds the bridge and prints no
# "PCI: Fatal: No config space access function found".
. "$REPO/tests/sandbox/lib.sh"
G=$REPO/build/guest-tests

expect_status 1 timeout -k 10 60 "$MINIVMM" run --kernel "$G/pci.elf"
expect_output 'pci: 00:00.0 8086:1237 class 0600'
expect_output 'pci: 1 functions on buses 0-3'
expect_output 'pci: ok'

. "$REPO/guest-tests/linux/testlib.sh"
linux_initramfs "$TMPDIR/initrd.gz"
# Warning-looking lines of a boot, and its port-I/O exits (docs/boot.md
# lists whose each warning is; the exits say what PCI probing costs).
report() {
	echo "--- $1: lines that look like warnings:"
	echo "$OUT" | grep -iE 'warn|error|fatal|fail|bug|firmware|not found|unable|cannot' |
		grep -vE '^minivmm-init|MINIVMM-CHECK' || true
	python3 - "$TMPDIR/$1.json" "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("--- %s: io exits %d, init at %.0f ms" % (sys.argv[2], s["exits"]["io"], s["milestones"]["init_ms"]))
PY
}

# minivmm's default: pci=off appended, so the kernel never probes the
# bridge and still says it found no configuration mechanism.
linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 256M --stats "$TMPDIR/pci-off.json" \
	--cmdline "console=ttyS0 quiet panic=-1 minivmm.cpus=1"
expect_output 'MINIVMM-CHECK PASS'
expect_output 'minivmm-init: pci: none$'
report pci-off

# A kernel allowed to probe (any pci= option keeps minivmm from adding
# pci=off; nommconf only skips MMCONFIG, which has no MCFG table here).
linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 256M --stats "$TMPDIR/pci-on.json" \
	--cmdline "console=ttyS0 quiet panic=-1 pci=nommconf minivmm.cpus=1"
expect_output 'MINIVMM-CHECK PASS'
expect_output 'minivmm-init: pci: 0000:00:00.0=0x8086:0x1237$'
echo "$OUT" | grep -q 'PCI: Fatal' && fail "the kernel found no PCI configuration mechanism"
report pci-on
exit 0
