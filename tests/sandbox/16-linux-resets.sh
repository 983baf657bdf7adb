# The stock kernel's other reboot methods end the run as a reboot too:
# reboot=pci (0x02 then 0x06/0x0E to the Reset Control Register 0xCF9,
# devices/pci_host.c and devices/reset.c) and reboot=kbd (0xFE to the
# 8042's command port, devices/i8042.c).
. "$REPO/tests/sandbox/lib.sh"
. "$REPO/guest-tests/linux/testlib.sh"
linux_initramfs "$TMPDIR/initrd.gz"

for m in pci:'reset control register' kbd:'i8042'; do
	method=${m%%:*} why=${m#*:}
	linux_boot 0 --initrd "$TMPDIR/initrd.gz" --memory 256M --stats "$TMPDIR/$method.json" \
		--cmdline "console=ttyS0 quiet panic=-1 reboot=$method minivmm.mode=reboot"
	expect_output 'reboot: Restarting system'
	python3 - "$TMPDIR/$method.json" "$why" <<'PY' || fail "reboot=$method did not stop the VM as a reboot"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["exit_status"] == 0, s
assert s["stop_reason"].startswith("guest rebooted (" + sys.argv[2]), s
PY
done
