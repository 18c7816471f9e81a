#!/usr/bin/env python3
"""qcow2-l2set.py FILE GUEST-OFFSET ENTRY-EXPR [BITMAP-EXPR]: rewrites the L2 entry of one
cluster of a qcow2 image whose first L2 table maps it (tests craft damaged images with it).
The expressions are Python, over e (the entry now) and b (its subcluster bitmap)."""
import struct
import sys

path, goff, expr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bexpr = sys.argv[4] if len(sys.argv) > 4 else None
with open(path, 'r+b') as f:
    h = f.read(104)
    cluster_bits = struct.unpack('>I', h[20:24])[0]
    l1 = struct.unpack('>Q', h[40:48])[0]
    extl2 = struct.unpack('>I', h[4:8])[0] == 3 and struct.unpack('>Q', h[72:80])[0] & 16
    f.seek(l1)
    l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
    pos = l2 + (goff >> cluster_bits) * (16 if extl2 else 8)
    f.seek(pos)
    e, b = struct.unpack('>QQ', f.read(16))
    f.seek(pos)
    f.write(struct.pack('>Q', eval(expr)))
    if bexpr:
        f.write(struct.pack('>Q', eval(bexpr)))
