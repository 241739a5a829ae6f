"""A PyTorch reference that rounds exactly where nib's CPU engine rounds.

parity.py compares nib's greedy output with two references on the same GGUF
weights: the plain float32 model (model.Model.step) and this one, which
follows engine/forward.c, engine/attn.c and the x86 kernels step by step:

- matmuls: activations converted to the weight type's vec_dot_type first.
  Q8_0 weights: activations quantized per 32-element block as
  engine/arch/quant_avx2.c's quantize_row_q8_0 (the from_float installed on
  AVX2 and AVX-512 machines): d = amax/127 stored as fp16, q = round-half-
  even(x * (127/amax)) with the float id; each block's exact int32 dot times
  fp32(fp16 dx) * fp32(fp16 dw). F16 weights: activations rounded to fp16,
  products exact in fp32. Bias added afterwards in fp32.
- RMSNorm: sum of fp32 squares accumulated in double, scale =
  1/sqrtf(float(ss/n) + eps) with eps the GGUF's float32, (x*scale)*w.
- RoPE: theta_scale = powf(base, -2/n_rot), theta = pos, multiplied up by
  theta_scale step by step in fp32, cosf/sinf; x0*c - x1*s in fp32.
- K and V stored in fp16; the query rounded to fp16 before its dot products;
  scores scaled by 1/sqrtf(head_dim); softmax with llama.cpp's vectorised
  expf (engine/attn.c eng__expf_vec), sum in double, p = e * float(1/sum),
  p rounded to fp16 before the weighted sum of fp16 V.
- SwiGLU: g / (1 + expf_vec(-g)) * up in fp32.

What is left is the order of summation inside dot products (nib: fp32
accumulators in SIMD lanes; here: exact products summed in float64, then
rounded to fp32), a relative difference of order 1e-7..1e-6, and glibc's
cosf/sinf/powf against float64 rounded to fp32 (equal but for rare
last-bit cases).
"""
import ctypes
import ctypes.util
import math

import numpy as np
import torch

import gguf
from export import name_map, model_from_gguf

F32, F64 = torch.float32, torch.float64

_libm_dll = ctypes.CDLL(ctypes.util.find_library("m"))
for _f in ("cosf", "sinf"):
    getattr(_libm_dll, _f).restype = ctypes.c_float
    getattr(_libm_dll, _f).argtypes = [ctypes.c_float]
_libm_dll.powf.restype = ctypes.c_float
_libm_dll.powf.argtypes = [ctypes.c_float, ctypes.c_float]
_libm = _libm_dll


def fp16(x):
    return x.to(torch.float16).to(F32)


def fma32(a, b, c):
    return _fma32(a, b, c)


def tree16(v):
    """Sum of 16 lanes (last dim) as _mm512_reduce_add_ps / attn.c sum16_tree:
    halves, quarters, then (s0 + s2) + (s1 + s3), all in fp32."""
    s8 = v[..., :8] + v[..., 8:]
    s4 = s8[..., :4] + s8[..., 4:]
    return (s4[..., 0] + s4[..., 2]) + (s4[..., 1] + s4[..., 3])


def _fma32(a, b, c):
    # fmaf(a, b, c): the product of two floats is exact in double; the sum
    # rounds once in double and once to float (double rounding only on rare
    # exact midpoints).
    return (a.to(F64) * b.to(F64) + c.to(F64)).to(F32)


def expf_vec(x):
    """engine/attn.c eng__expf_vec (llama.cpp's ggml_v_expf), elementwise in fp32."""
    x = x.to(F32)
    shift = torch.tensor(float.fromhex("0x1.8p23"), dtype=F32)
    z = _fma32(x, torch.tensor(float.fromhex("0x1.715476p+0"), dtype=F32), shift)
    n = z - shift
    c = lambda h: torch.tensor(float.fromhex(h), dtype=F32)  # noqa: E731
    b = _fma32(-n, c("0x1.7f7d1cp-20"), _fma32(-n, c("0x1.62e4p-1"), x))
    u = b * b
    j = _fma32(_fma32(_fma32(c("0x1.0e4020p-7"), b, c("0x1.573e2ep-5")), u,
                      _fma32(c("0x1.555e66p-3"), b, c("0x1.fffdb6p-2"))),
               u, _fma32(c("0x1.ffffecp-1"), b, torch.ones_like(b)))
    # scale_pow2(j, n): j * 2^n rounded once (ldexp in double, then to float).
    nn_ = n.to(torch.int64).clamp(-300, 300)
    r = torch.ldexp(j.to(F64), nn_).to(F32)
    far = ~(n.abs() <= 192.0)
    if far.any():
        r = torch.where(far, torch.where(n > 0, torch.full_like(r, math.inf),
                                         torch.where(x != x, x, torch.zeros_like(r))), r)
    return r


def q8_0_quantize(x):
    """Activations [..., k] -> (q [..., k/32, 32] as float ints, d [..., k/32]
    fp16 values as float32), as quantize_row_q8_0_avx2."""
    sh = x.shape
    b = x.reshape(*sh[:-1], sh[-1] // 32, 32).to(F32)
    amax = b.abs().amax(-1)
    d = fp16(amax / 127.0)
    one27 = torch.tensor(127.0, dtype=F32)
    idv = torch.where(amax != 0, one27 / torch.where(amax != 0, amax, torch.ones_like(amax)),
                      torch.zeros_like(amax))
    q = torch.round(b * idv[..., None])  # round half to even, as vroundps
    return q, d


class Linear:
    def __init__(self, w, wtype, bias=None):
        self.wtype = wtype
        self.bias = bias
        w = torch.as_tensor(w, dtype=F32)
        self.out, self.inp = w.shape
        if wtype == gguf.GGML_Q8_0:
            blk = w.reshape(self.out, self.inp // 32, 32)
            # dequantized value = q * fp16(d) exactly, and max |q| = 127 in
            # every non-zero block (quantize_row_q8_0_ref): recover q and d.
            d = blk.abs().amax(-1) / 127.0
            safe = torch.where(d > 0, d, torch.ones_like(d))
            q = torch.round(blk / safe[..., None])
            assert torch.equal(q * d[..., None], blk), "not a Q8_0 weight"
            assert torch.equal(fp16(d), d)
            self.q, self.d = q.to(F64), d.to(F64)
        elif wtype == gguf.GGML_F16:
            assert torch.equal(fp16(w), w)
            self.w = w.to(F64)
        else:  # F32 weight, F32 activations
            self.w = w.to(F64)

    def __call__(self, x):
        """x [T, inp] float32 -> [T, out] float32, summed in the order of
        nib's AVX-512 kernels (engine/arch/quant_avx512.c vec_dot, equal bit
        for bit to the batched gemm_avx512.c kernels)."""
        T = x.shape[0]
        outs = []
        if self.wtype == gguf.GGML_Q8_0:
            nb = self.inp // 32
            assert nb % 4 == 0, "odd block counts take a scalar tail: not emulated"
            qx, dx = q8_0_quantize(x)
            qx = qx.to(F64).reshape(T, nb, 8, 4)
            qw = self.q.reshape(self.out, nb, 8, 4)
            for s in range(0, T, 16):
                # 8 int32 lanes per block (vpdpbusd sums 4 products): exact
                P = torch.einsum("tbgk,obgk->tobg", qx[s:s + 16], qw)
                # fp16(dx) * fp16(dw) in fp32 (exact: 11 x 11 bits)
                D = (dx[s:s + 16, None, :].to(F64) * self.d[None]).to(F32)
                acc0 = torch.zeros(P.shape[0], self.out, 16, dtype=F32)
                acc1 = torch.zeros_like(acc0)
                for b in range(0, nb, 4):
                    # acc0: blocks b, b+1 (lanes 0-7, 8-15); acc1: b+2, b+3
                    for acc, b0 in ((acc0, b), (acc1, b + 2)):
                        p = torch.cat([P[:, :, b0], P[:, :, b0 + 1]], -1)
                        d = torch.cat([D[:, :, b0, None].expand(-1, -1, 8),
                                       D[:, :, b0 + 1, None].expand(-1, -1, 8)], -1)
                        acc.copy_(fma32(d, p, acc))
                outs.append(tree16(acc0 + acc1))
        elif self.wtype == gguf.GGML_F16:
            n = self.inp
            assert n % 32 == 0, "F16 rows not a multiple of 32: not emulated"
            xh = fp16(x).to(F64)
            for s in range(0, T, 16):
                xs = xh[s:s + 16]
                acc0 = torch.zeros(xs.shape[0], self.out, 16, dtype=F32)
                acc1 = torch.zeros_like(acc0)
                for i in range(0, n, 32):
                    acc0 = fma32(xs[:, None, i:i + 16], self.w[None, :, i:i + 16], acc0)
                    acc1 = fma32(xs[:, None, i + 16:i + 32], self.w[None, :, i + 16:i + 32], acc1)
                outs.append(tree16(acc0 + acc1))
        else:
            raise NotImplementedError("F32 weights")
        y = torch.cat(outs)
        if self.bias is not None:
            y = y + self.bias
        return y


class NibRef:
    def __init__(self, path):
        m, kv = model_from_gguf(path)
        _, _, types = gguf.read(path)
        self.cfg = cfg = m.cfg
        sd = {k: v.detach().to(F32) for k, v in m.state_dict().items()}
        gname = dict((s, g) for g, s in name_map(cfg.n_layers))
        self.eps = torch.tensor(kv["qwen2.attention.layer_norm_rms_epsilon"], dtype=F32)

        def lin(name, bias=None):
            return Linear(sd[name], types[gname[name]],
                          None if bias is None else sd[bias])
        self.embed = sd["embed.weight"]
        self.out_norm = sd["norm.weight"]
        self.output = lin("embed.weight")
        self.layers = []
        for i in range(cfg.n_layers):
            p = f"blocks.{i}."
            self.layers.append(dict(
                attn_norm=sd[p + "attn_norm.weight"], ffn_norm=sd[p + "ffn_norm.weight"],
                wq=lin(p + "wq.weight", p + "wq.bias"), wk=lin(p + "wk.weight", p + "wk.bias"),
                wv=lin(p + "wv.weight", p + "wv.bias"), wo=lin(p + "wo.weight"),
                w_gate=lin(p + "w_gate.weight"), w_up=lin(p + "w_up.weight"),
                w_down=lin(p + "w_down.weight")))
        hd = cfg.head_dim
        self.n_rot = hd
        self.theta_scale = np.float32(_libm.powf(cfg.rope_base, float(np.float32(-2.0) / np.float32(hd))))
        self.scale = torch.tensor(1.0 / math.sqrt(hd), dtype=F32)  # 1/sqrtf(hd)
        assert float(self.scale) == float(np.float32(1.0) / np.sqrt(np.float32(hd)))

    def rmsnorm(self, x, w):
        ss = (x * x).to(F64).sum(-1, keepdim=True)
        mean = (ss / x.shape[-1]).to(F32)
        scale = torch.tensor(1.0, dtype=F32) / torch.sqrt(mean + self.eps)
        return (x * scale) * w

    def rope_cs(self, positions):
        """forward.c rope_table: theta = pos, multiplied by theta_scale step by
        step in fp32; glibc's cosf/sinf (the very functions nib calls)."""
        rows_c, rows_s = [], []
        for pos in positions:
            th = np.float32(pos)
            c, s = [], []
            for _ in range(self.n_rot // 2):
                c.append(_libm.cosf(float(th)))
                s.append(_libm.sinf(float(th)))
                th = np.float32(th * self.theta_scale)
            rows_c.append(c)
            rows_s.append(s)
        return (torch.tensor(np.array(rows_c, dtype=np.float32)),
                torch.tensor(np.array(rows_s, dtype=np.float32)))

    @staticmethod
    def rope(x, cs, sn):
        # x [T, H, hd], NeoX halves; fp32 products and difference (no FMA:
        # forward.c is compiled with -std=c11, so no contraction)
        h = x.shape[-1] // 2
        x0, x1 = x[..., :h], x[..., h:]
        c, s = cs[:, None, :], sn[:, None, :]
        return torch.cat([x0 * c - x1 * s, x0 * s + x1 * c], -1)

    def attention(self, q, K, V, pos0):
        """attn_avx512.c / attn.c eng__attn_head_ref for every (token, head):
        q [T, H, hd] fp32, K/V [S, KVH, hd] fp16 values; causal from pos0."""
        cfg = self.cfg
        T, H, hd = q.shape
        S = K.shape[0]
        Sp = (S + 15) // 16 * 16
        rep = cfg.n_heads // cfg.n_kv_heads
        q16 = fp16(q).to(F64)
        out = torch.empty(T, H, hd, dtype=F32)
        Kp = torch.zeros(Sp, K.shape[1], hd, dtype=F64)
        Vp = torch.zeros(Sp, V.shape[1], hd, dtype=F64)
        Kp[:S], Vp[:S] = K, V
        valid = torch.arange(Sp)[None, :] <= (pos0 + torch.arange(T))[:, None]  # [T, Sp]
        for h in range(H):
            kh, vh = Kp[:, h // rep], Vp[:, h // rep]
            # scores: one 16-lane FMA chain along the head, lane tree, * scale
            acc = torch.zeros(T, Sp, 16, dtype=F32)
            for d0 in range(0, hd, 16):
                acc = fma32(kh[None, :, d0:d0 + 16], q16[:, h, None, d0:d0 + 16], acc)
            sc = tree16(acc) * self.scale
            sc = sc.masked_fill(~valid, -math.inf)
            mx = sc.amax(-1, keepdim=True)
            e = expf_vec(sc - mx).masked_fill(~valid, 0.0)
            # blocks of 16 summed by the lane tree in fp32, blocks in double
            tot = tree16(e.view(T, Sp // 16, 16)).to(F64).sum(-1, keepdim=True)
            inv = (1.0 / tot).to(F32)
            p16 = fp16(e * inv).to(F64)  # [T, Sp]
            # p.V: lane j % 16 takes position j, then the lane tree
            acc = torch.zeros(T, hd, 16, dtype=F32)
            for j0 in range(0, Sp, 16):
                acc = fma32(vh[None, j0:j0 + 16, :].transpose(1, 2),
                            p16[:, None, j0:j0 + 16], acc)
            out[:, h] = tree16(acc)
        return out

    @torch.no_grad()
    def step(self, ids, cache, all_logits=False):
        """ids: list of tokens after the cache's positions; cache: list of
        [K, V] per layer (fp16 values in fp32 tensors), grown in place.
        Returns logits [T or 1, V] float32."""
        cfg = self.cfg
        T = len(ids)
        pos0 = cache[0][0].shape[0] if cache else 0
        hd = cfg.head_dim
        cs, sn = self.rope_cs(range(pos0, pos0 + T))
        x = self.embed[torch.tensor(ids)].clone()
        for li, L in enumerate(self.layers):
            h = self.rmsnorm(x, L["attn_norm"])
            q = L["wq"](h).view(T, cfg.n_heads, hd)
            k = L["wk"](h).view(T, cfg.n_kv_heads, hd)
            v = L["wv"](h).view(T, cfg.n_kv_heads, hd)
            q, k = self.rope(q, cs, sn), self.rope(k, cs, sn)
            k, v = fp16(k), fp16(v)
            if len(cache) <= li:
                cache.append([k, v])
            else:
                cache[li] = [torch.cat([cache[li][0], k]), torch.cat([cache[li][1], v])]
            K, V = cache[li]
            y = self.attention(q, K, V, pos0).reshape(T, cfg.n_heads * hd)
            x = x + L["wo"](y)
            h = self.rmsnorm(x, L["ffn_norm"])
            g, u = L["w_gate"](h), L["w_up"](h)
            a = g / (1.0 + expf_vec(0.0 - g)) * u
            x = x + L["w_down"](a)
        if not all_logits:
            x = x[-1:]
        return self.output(self.rmsnorm(x, self.out_norm))

    @torch.no_grad()
    def greedy(self, ids, n):
        """Greedy continuation (argmax, first index on exact ties) of n tokens."""
        cache = []
        logits = self.step(ids, cache)[-1]
        out = []
        for _ in range(n):
            t = int(torch.argmax(logits))
            out.append(t)
            logits = self.step([t], cache)[-1]
        return out
