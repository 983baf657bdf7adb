#!/usr/bin/env python3
"""Write well-formed seed inputs for fuzz_virtio_net (layout in
fuzz/fuzz_virtio_net.c) into tests/fuzz-regress/fuzz_virtio_net/: a
transmit chain (header and frame split) beside receive buffers, with and
without mergeable buffers, and one with an indirect receive chain. Run
again after changing the input layout."""
import os
import struct
import sys

from gen_virtq_seeds import INDIRECT, NEXT, WRITE, ring_ram  # the same ring layout

HDR = 12


def image(flags, shift, sizes, heads, descs, blobs):
    return bytes([flags, shift]) + struct.pack("<HH", *sizes) + ring_ram(shift, heads, descs, blobs)


def seeds():
    frame = bytes(range(60))
    tx = {0: (0x3000, HDR, NEXT, 1), 1: (0x3100, len(frame), 0, 0)}
    blobs = {0x3000: bytes(HDR), 0x3100: frame}
    rx = {2: (0x4000, 600, WRITE, 0), 3: (0x4400, 600, WRITE, 0), 4: (0x4800, 600, WRITE, 0),
          5: (0x4c00, 1600, WRITE, 0)}
    descs = {**tx, **rx}
    yield "mergeable", image(4, 3, (1400, 60), [0, 2, 3, 4, 5], descs, blobs)
    yield "single", image(0, 3, (1400, 60), [0, 2, 3, 4, 5], descs, blobs)
    yield "event-idx", image(6, 4, (60, 9000), [0, 2, 3, 4, 5], descs, blobs)
    table = struct.pack("<QIHH", 0x5000, 800, WRITE | NEXT, 1) + \
        struct.pack("<QIHH", 0x5400, 800, WRITE, 0)
    ind = {**tx, 2: (0x6000, len(table), INDIRECT, 0)}
    yield "indirect", image(5, 3, (1500, 1500), [0, 2], ind, {**blobs, 0x6000: table})


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    out = os.path.join(root, "tests", "fuzz-regress", "fuzz_virtio_net")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)
    print("wrote %s" % out, file=sys.stderr)


if __name__ == "__main__":
    main()
