# The stock kernel boots to /init with 2, 1 and 4 CPUs; the in-guest check
# (guest-tests/linux/init) asserts memory, CPU count, command line and work
# on every CPU, then powers off.
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/guest-tests/linux/testlib.sh"
linux_initramfs "$TMPDIR/initrd.gz"

linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 512M --cpus 2 --stats "$TMPDIR/stats.json" \
	--cmdline "console=ttyS0 quiet panic=-1 minivmm.cpus=2 minivmm.mem=400-512 minivmm.token=t20"
expect_output '^MINIVMM-INIT'
expect_output 'minivmm-init: 2 CPUs online: 0-1'
expect_output 'busy loop ran on each of 2 CPUs'
expect_output 'MINIVMM-CHECK PASS'
echo "$OUT" | grep -q 'MINIVMM-CHECK FAIL' && fail "the in-guest check failed"
python3 - "$TMPDIR/stats.json" <<'PY' || fail "stats are wrong"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["exit_status"] == 0 and s["stop_reason"] == "guest powered off", s
assert s["boot_format"] == "bzimage", s
m = s["milestones"]
assert m["first_output_ms"] and m["init_ms"] and m["first_output_ms"] < m["init_ms"], m
assert s["exits"]["io"] > 0, s
h = s["host_memory"]
# The guest's pages are counted apart (mincore) from the VMM's own.
assert 0 < h["guest_resident_kib"] <= 512 * 1024, h
assert 0 < h["vmm_kib"] <= h["vmm_peak_kib"] < 128 * 1024, h
assert 0 < h["vmm_private_kib"] <= h["vmm_kib"], h
print("init at %.0f ms, exit at %.0f ms, exits %s; host memory %s" %
      (m["init_ms"], s["wall_ms"], s["exits"], h))
PY
# The TSC-deadline timer is offered whenever KVM has KVM_CAP_TSC_DEADLINE_TIMER
# (72; KVM_CHECK_EXTENSION is _IO(0xAE, 0x03)).
tscdl=$(python3 -c 'import fcntl, os; print("yes" if fcntl.ioctl(os.open("/dev/kvm", os.O_RDWR), 0xAE03, 72) > 0 else "no")') || fail "cannot ask /dev/kvm for KVM_CAP_TSC_DEADLINE_TIMER"
expect_output "minivmm-init: tsc_deadline_timer $tscdl"
# No complaints about our ACPI tables or e820 map.
echo "$OUT" | grep -iE 'ACPI (BIOS )?(Error|Warning)|ACPI: .*(invalid|bad)|e820.*(bug|overlap)' &&
	fail "the kernel complained about the firmware tables"
# No PCI error of ours: configuration mechanism #1 answers (pci_host.c).
echo "$OUT" | grep -q "PCI: Fatal" && fail "the kernel found no PCI configuration mechanism"
echo "$OUT" | grep -q "minivmm-init: cmdline: .* pci=noearly" || fail "pci=noearly was not added to the command line"

for n in 1 4; do
	linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 256M --cpus $n \
		--cmdline "console=ttyS0 quiet panic=-1 minivmm.cpus=$n minivmm.mem=180-256"
	expect_output "busy loop ran on each of $n CPUs"
	expect_output 'MINIVMM-CHECK PASS'
done
exit 0
