#!/usr/bin/env python3
"""Write well-formed seed inputs for fuzz_virtq (layout in fuzz/fuzz_virtq.c)
into tests/fuzz-regress/fuzz_virtq/: one per request type, direct and
indirect. Run again after changing the input layout."""
import os
import struct
import sys

BASE = 0x1000
NEXT, WRITE, INDIRECT = 1, 2, 4


def ring_ram(shift, heads, descs, blobs):
    """The guest RAM both virtqueue fuzz targets read: the available ring
    at BASE listing heads, the descriptor table after it, and blobs (gpa:
    bytes) placed in it. descs maps index to (addr, len, flags, next)."""
    num = 1 << shift
    ram = bytearray(0x8000)
    avail = struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads)
    ram[0:len(avail)] = avail
    dtab = ((BASE + 6 + 2 * num + 15) & ~15) - BASE
    for i, (addr, ln, fl, nx) in descs.items():
        ram[dtab + 16 * i:dtab + 16 * i + 16] = struct.pack("<QIHH", addr, ln, fl, nx)
    for gpa, data in blobs.items():
        ram[gpa - BASE:gpa - BASE + len(data)] = data
    return bytes(ram)


def image(flags, shift, heads, descs, blobs):
    return bytes([flags, shift]) + ring_ram(shift, heads, descs, blobs)


def hdr(t, sector=0):
    return struct.pack("<IIQ", t, 0, sector)


def seeds():
    rw = lambda t, w: image(0, 2, [0], {0: (0x3000, 16, NEXT, 1), 1: (0x4000, 1024, NEXT | (WRITE if w else 0), 2),
                                     2: (0x5000, 1, WRITE, 0)}, {0x3000: hdr(t, 8), 0x4000: b"\xab" * 1024})
    yield "read", rw(0, True)
    yield "write", rw(1, False)
    yield "write-ro", bytes([4]) + rw(1, False)[1:]
    yield "flush", image(2, 3, [5], {5: (0x3000, 16, NEXT, 6), 6: (0x5000, 1, WRITE, 0)}, {0x3000: hdr(4)})
    yield "get-id", image(0, 1, [0], {0: (0x3000, 16, NEXT, 1), 1: (0x4000, 21, WRITE, 0)}, {0x3000: hdr(8)})
    seg = struct.pack("<QII", 16, 8, 0)
    yield "discard", image(0, 2, [0], {0: (0x3000, 32, NEXT, 1), 1: (0x5000, 1, WRITE, 0)}, {0x3000: hdr(11) + seg})
    yield "write-zeroes", image(0, 2, [0], {0: (0x3000, 32, NEXT, 1), 1: (0x5000, 1, WRITE, 0)},
                                {0x3000: hdr(13) + struct.pack("<QII", 16, 8, 1)})
    table = b"".join(struct.pack("<QIHH", *d) for d in [(0x3000, 16, NEXT, 1), (0x4000, 512, NEXT | WRITE, 2),
                                                       (0x5000, 1, WRITE, 0)])
    yield "indirect-read", image(1, 4, [0], {0: (0x6000, 48, INDIRECT, 0)}, {0x6000: table, 0x3000: hdr(0, 2)})
    yield "event-idx-two", image(3, 2, [0, 2], {0: (0x3000, 16, NEXT, 1), 1: (0x5000, 1, WRITE, 0),
                                              2: (0x3100, 16, NEXT, 3), 3: (0x5001, 1, WRITE, 0)},
                                 {0x3000: hdr(4), 0x3100: hdr(8)})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz-regress/fuzz_virtq"
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
