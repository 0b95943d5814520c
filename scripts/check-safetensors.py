#!/usr/bin/env python3
"""Cross-checks src/io/safetensors.ts against Python's reference `safetensors` package.

  write PATH   writes the fixture test/fixtures/safetensors/python.safetensors (the test decodes
               it and compares with EXPECTED below, mirrored in test/io/safetensors.test.ts)
  check PATH   loads a file written by the TypeScript encoder and checks it holds EXPECTED

Uses `safetensors.numpy` when importable (Debian ships no package: put the wheel's contents on
PYTHONPATH); otherwise `write` falls back to a struct+json writer that follows the format spec
(and the reference writer's layout), and `check` to a minimal reader. The fixture committed was
written by safetensors 0.8.0.
"""
import json
import struct
import sys

import numpy as np

try:
    import safetensors
    import safetensors.numpy as st
except ImportError:  # pragma: no cover - depends on the machine
    safetensors = None
    st = None

EXPECTED = {
    "weight": np.array([[0.5, -1.25, 3e-8], [1e30, -0.0, np.inf]], dtype=np.float32),
    "bias": np.array([1 / 3, -2.5e-300, np.pi], dtype=np.float64),
    "scalar": np.array(42.0, dtype=np.float64),
    "counts": np.array([[-(2**31), -1], [0, 2**31 - 1]], dtype=np.int32),
    "ids": np.array([0, 1, 2**32 - 1, 123456789], dtype=np.uint32),
    "bytes": np.array([0, 1, 127, 128, 255], dtype=np.uint8),
    "mask": np.array([[True, False], [False, True]], dtype=np.bool_),
    "empty": np.zeros((0, 3), dtype=np.float32),
}
METADATA = {"format": "nbi-test"}

CODES = {"float64": "F64", "float32": "F32", "uint32": "U32", "int32": "I32", "uint8": "U8", "bool": "BOOL"}
DTYPES = {v: np.dtype(k) for k, v in CODES.items()}
ORDER = ["F64", "F32", "U32", "I32", "U8", "BOOL"]  # largest element first, then by name


def write_plain(path, tensors, metadata):
    names = sorted(tensors, key=lambda n: (ORDER.index(CODES[tensors[n].dtype.name]), n))
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in names:
        blob = tensors[name].astype(tensors[name].dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": CODES[tensors[name].dtype.name],
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_plain(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]].newbyteorder("<")
        out[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"])
    return out


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        sys.exit(__doc__)
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        if st is not None:
            st.save_file(EXPECTED, path, metadata=METADATA)
            print(f"wrote {path} with safetensors {safetensors.__version__}")
        else:
            write_plain(path, EXPECTED, METADATA)
            print(f"wrote {path} with the struct+json fallback (safetensors not importable)")
        return
    loaded = st.load_file(path) if st is not None else read_plain(path)
    assert sorted(loaded) == sorted(EXPECTED), (sorted(loaded), sorted(EXPECTED))
    for name, want in EXPECTED.items():
        got = loaded[name]
        assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, got.shape)
        assert got.tobytes() == want.tobytes(), (name, got, want)
    reader = f"safetensors {safetensors.__version__}" if st is not None else "the fallback reader"
    print(f"{path}: {len(loaded)} tensors match, read by {reader}")


if __name__ == "__main__":
    main()
