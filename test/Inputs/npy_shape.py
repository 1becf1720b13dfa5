"""For lit tests (%python npy_shape.py FILE.npy...): prints `NAME: DESCR SHAPE
finite|nonfinite` per file (NAME the file's base name), without numpy."""
import ast
import math
import os
import struct
import sys

for path in sys.argv[1:]:
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", path
    hlen = struct.unpack("<H", data[8:10])[0]
    header = ast.literal_eval(data[10:10 + hlen].decode("latin1"))
    shape, descr = header["shape"], header["descr"]
    count = 1
    for d in shape:
        count *= d
    body = data[10 + hlen:]
    code = {"<f4": "f", "<f8": "d", "<i8": "q"}[descr]
    values = struct.unpack("<%d%s" % (count, code), body[:count * struct.calcsize(code)])
    finite = all(math.isfinite(v) for v in values)
    print("%s: %s [%s] %s" % (os.path.basename(path), descr, ", ".join(str(d) for d in shape),
                              "finite" if finite else "nonfinite"))
