"""For lit tests (%python write_npy.py OUT.npy SEED DIM...): writes a float32
.npy of shape DIM... with values in [-1, 1) from SEED, without numpy (lit's
python may not have it)."""
import struct
import sys

path, seed, shape = sys.argv[1], int(sys.argv[2]), [int(d) for d in sys.argv[3:]]
count = 1
for d in shape:
    count *= d
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
header += " " * (63 - (10 + len(header)) % 64) + "\n"  # magic + version + length + header: a multiple of 64
state, values = seed, []
for _ in range(count):
    state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
    values.append((state >> 40) / 2**23 - 1.0)
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
    f.write(struct.pack("<%df" % count, *values))
