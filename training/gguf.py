"""A small GGUF v3 writer and reader (the `gguf` pip package is not available).

Layout: header (magic, version 3, tensor count, KV count), KVs, tensor infos
(name, dims with ne[0] the fastest-varying, ggml type, offset into the data
section), padding to the alignment, then each tensor's data at an aligned
offset. A PyTorch Linear weight [out, in] stored row-major is ne = [in, out].
"""
import struct

import numpy as np

ALIGN = 32
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
QK8_0 = 32


class Writer:
    def __init__(self):
        self.kv = []  # (key, type, value, elem_type)
        self.tensors = []  # (name, ne, ggml_type, bytes)

    # Values ---------------------------------------------------------------
    def add(self, key, vtype, value, elem_type=None):
        self.kv.append((key, vtype, value, elem_type))

    def u32(self, k, v): self.add(k, T_U32, int(v))
    def i32(self, k, v): self.add(k, T_I32, int(v))
    def f32(self, k, v): self.add(k, T_F32, float(v))
    def bool(self, k, v): self.add(k, T_BOOL, bool(v))
    def str(self, k, v): self.add(k, T_STR, v)
    def arr_str(self, k, v): self.add(k, T_ARR, list(v), T_STR)
    def arr_i32(self, k, v): self.add(k, T_ARR, list(v), T_I32)
    def arr_f32(self, k, v): self.add(k, T_ARR, list(v), T_F32)

    def tensor(self, name, arr, ggml_type):
        """arr: numpy array in PyTorch (row-major) shape; stored as that type."""
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        ne = list(reversed(arr.shape))
        if ggml_type == GGML_F32:
            data = arr.astype("<f4").tobytes()
        elif ggml_type == GGML_F16:
            data = arr.astype("<f2").tobytes()
        elif ggml_type == GGML_Q8_0:
            data = quantize_q8_0(arr)
        else:
            raise ValueError(ggml_type)
        self.tensors.append((name, ne, ggml_type, data))

    # Encoding ---------------------------------------------------------------
    @staticmethod
    def _s(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _val(self, t, v):
        if t == T_STR:
            return self._s(v)
        fmt = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
               T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}[t]
        return struct.pack(fmt, v)

    def write(self, path):
        out = bytearray()
        out += b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for k, t, v, et in self.kv:
            out += self._s(k) + struct.pack("<I", t)
            if t == T_ARR:
                out += struct.pack("<IQ", et, len(v))
                if et == T_I32:
                    out += np.asarray(v, dtype="<i4").tobytes()
                elif et == T_F32:
                    out += np.asarray(v, dtype="<f4").tobytes()
                else:
                    out += b"".join(self._val(et, x) for x in v)
            else:
                out += self._val(t, v)
        off = 0
        offs = []
        for name, ne, gt, data in self.tensors:
            offs.append(off)
            out += self._s(name) + struct.pack("<I", len(ne))
            out += b"".join(struct.pack("<Q", n) for n in ne)
            out += struct.pack("<IQ", gt, off)
            off += (len(data) + ALIGN - 1) // ALIGN * ALIGN
        out += b"\0" * ((-len(out)) % ALIGN)
        with open(path, "wb") as f:
            f.write(out)
            for (name, ne, gt, data), o in zip(self.tensors, offs):
                f.write(data)
                f.write(b"\0" * ((-len(data)) % ALIGN))


def quantize_q8_0(arr):
    """ggml's Q8_0: blocks of 32 along the row, fp16 scale d = amax/127, int8 round(x/d)."""
    x = arr.reshape(-1, QK8_0).astype(np.float32)
    amax = np.abs(x).max(axis=1)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0).astype(np.float32)
    y = x * inv[:, None]
    q = (np.sign(y) * np.floor(np.abs(y) + 0.5)).astype(np.int8)  # roundf: half away from 0
    blocks = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("q", "i1", QK8_0)])
    blocks["d"] = d.astype(np.float16)
    blocks["q"] = q
    return blocks.tobytes()


def dequantize_q8_0(data, n):
    blocks = np.frombuffer(data, dtype=[("d", "<f2"), ("q", "i1", QK8_0)], count=n // QK8_0)
    return (blocks["d"].astype(np.float32)[:, None] * blocks["q"].astype(np.float32)).reshape(-1)


# ---------------------------------------------------------------------------
# Reader (tests and export checks)
# ---------------------------------------------------------------------------

def read(path):
    """Returns (kv dict, {name: float32 numpy array in PyTorch shape}, {name: ggml type})."""
    buf = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def rstr():
        nonlocal pos
        n = take("<Q")
        s = buf[pos:pos + n].decode("utf-8")
        pos += n
        return s

    fmts = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
            T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}

    def rval(t):
        if t == T_STR:
            return rstr()
        if t == T_ARR:
            et, n = take("<I"), take("<Q")
            return [rval(et) for _ in range(n)]
        return take(fmts[t])

    assert buf[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    version, nt, nkv = take("<I"), take("<Q"), take("<Q")
    assert version == 3
    kv = {}
    for _ in range(nkv):
        k = rstr()
        kv[k] = rval(take("<I"))
    infos = []
    for _ in range(nt):
        name = rstr()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        infos.append((name, ne, take("<I"), take("<Q")))
    align = kv.get("general.alignment", ALIGN)
    start = (pos + align - 1) // align * align
    tensors, types = {}, {}
    for name, ne, gt, off in infos:
        n = int(np.prod(ne))
        o = start + off
        if gt == GGML_F32:
            a = np.frombuffer(buf, "<f4", n, o).astype(np.float32)
        elif gt == GGML_F16:
            a = np.frombuffer(buf, "<f2", n, o).astype(np.float32)
        elif gt == GGML_Q8_0:
            a = dequantize_q8_0(buf[o:o + n // QK8_0 * 34], n)
        else:
            raise ValueError(f"{name}: ggml type {gt} not supported by this reader")
        tensors[name] = a.reshape(list(reversed(ne)))
        types[name] = gt
    return kv, tensors, types
