#!/usr/bin/env python3
"""Print .npy arrays (the ANN harness's format) as COPY text, stdlib only.

    npy_copy.py vectors BASE.npy [TENANT.npy]   -> id \t [tenant \t] [v1,v2,...]
    npy_copy.py ids GT.npy K                    -> row \t {id1,...,idK}

Row numbers (ids) are 0-based, as in the harness (run.py loads row i as
id i, and its ground truth files hold those row numbers).  Only C-order
little-endian float32 (<f4) and int32 (<i4) arrays are read.
"""
import array
import ast
import sys


def load(path):
    with open(path, "rb") as f:
        magic = f.read(6)
        if magic != b"\x93NUMPY":
            raise SystemExit(f"{path}: not a .npy file")
        major = f.read(2)[0]
        hlen = int.from_bytes(f.read(2 if major == 1 else 4), "little")
        header = ast.literal_eval(f.read(hlen).decode("latin1"))
        if header["fortran_order"] or header["descr"] not in ("<f4", "<i4"):
            raise SystemExit(f"{path}: unsupported layout {header}")
        a = array.array("f" if header["descr"] == "<f4" else "i")
        a.frombytes(f.read())
        if sys.byteorder != "little":
            a.byteswap()
        return a, header["shape"]


def main():
    out = sys.stdout
    if sys.argv[1] == "vectors":
        v, shape = load(sys.argv[2])
        n, d = shape
        t = load(sys.argv[3])[0] if len(sys.argv) > 3 else None
        for i in range(n):
            vec = "[" + ",".join(repr(x) for x in v[i * d:(i + 1) * d]) + "]"
            out.write(f"{i}\t{t[i]}\t{vec}\n" if t is not None else f"{i}\t{vec}\n")
    elif sys.argv[1] == "ids":
        g, (n, d) = load(sys.argv[2])
        k = int(sys.argv[3])
        for i in range(n):
            out.write(f"{i}\t{{{','.join(str(x) for x in g[i * d:i * d + k])}}}\n")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
