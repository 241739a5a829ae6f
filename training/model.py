"""A small qwen2-architecture decoder, written to match nib's engine exactly.

RMSNorm, q/k/v projections with bias, output projection without, NeoX-style
rotary embeddings (rotate-half), grouped-query attention, SwiGLU FFN and
embeddings tied to the output layer (GGUF: no output.weight).
"""
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    n_vocab: int = 8192
    dim: int = 256
    n_layers: int = 6
    n_heads: int = 4
    n_kv_heads: int = 2
    ffn_dim: int = 768
    ctx: int = 1024
    rope_base: float = 10000.0
    norm_eps: float = 1e-6

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    def to_dict(self):
        return asdict(self)


PRESETS = {
    # The shipped pair (sized for ~1 CPU core-hour each).
    "target": Config(dim=256, n_layers=6, n_heads=4, n_kv_heads=2, ffn_dim=1024),
    "draft": Config(dim=128, n_layers=2, n_heads=2, n_kv_heads=1, ffn_dim=256),
    # CI smoke test.
    "tiny": Config(dim=64, n_layers=2, n_heads=2, n_kv_heads=1, ffn_dim=128, ctx=256),
    # A bigger pair for a GPU (see README).
    "target-gpu": Config(dim=1024, n_layers=16, n_heads=16, n_kv_heads=4, ffn_dim=2816, ctx=2048),
    "draft-gpu": Config(dim=512, n_layers=6, n_heads=8, n_kv_heads=2, ffn_dim=1536, ctx=2048),
}


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def rope_tables(cfg, T, device):
    hd = cfg.head_dim
    inv = 1.0 / (cfg.rope_base ** (torch.arange(0, hd, 2, device=device).float() / hd))
    t = torch.arange(T, device=device).float()
    f = torch.outer(t, inv)  # [T, hd/2]
    return torch.cos(f), torch.sin(f)


def apply_rope(x, cos, sin):
    # x: [B, H, T, hd]; NeoX layout: first half and second half are the pair.
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    c = cos[None, None].to(x.dtype)
    s = sin[None, None].to(x.dtype)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=True)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=True)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=True)
        self.wo = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.w_gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask):
        cfg = self.cfg
        B, T, _ = x.shape
        hd = cfg.head_dim
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, cfg.n_heads, hd).transpose(1, 2)
        k = self.wk(h).view(B, T, cfg.n_kv_heads, hd).transpose(1, 2)
        v = self.wv(h).view(B, T, cfg.n_kv_heads, hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = cfg.n_heads // cfg.n_kv_heads
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        att = att.float().masked_fill(mask, float("-inf")).softmax(-1).to(v.dtype)
        y = (att @ v).transpose(1, 2).reshape(B, T, cfg.n_heads * hd)
        x = x + self.wo(y)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_vocab, cfg.dim)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.apply(self._init)
        for b in self.blocks:  # scaled residual init (GPT-2)
            nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(b.w_down.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx):
        B, T = idx.shape
        cos, sin = rope_tables(self.cfg, T, idx.device)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool, device=idx.device), 1)
        x = self.embed(idx)
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        x = self.norm(x)
        return x @ self.embed.weight.t().to(x.dtype)

    # -- inference with a KV cache (eval, parity checks) ----------------------
    @torch.no_grad()
    def step(self, idx, cache):
        """Run tokens idx [1, T] after the cache's positions; returns logits [T, V].

        cache: a list (one entry per layer) of (k, v), grown in place; start
        with []. Plain float32, no autocast, as a reference for nib.
        """
        cfg = self.cfg
        T = idx.shape[1]
        pos0 = cache[0][0].shape[2] if cache else 0
        cos, sin = rope_tables(cfg, pos0 + T, idx.device)
        cos, sin = cos[pos0:], sin[pos0:]
        x = self.embed(idx)
        hd = cfg.head_dim
        rep = cfg.n_heads // cfg.n_kv_heads
        for li, b in enumerate(self.blocks):
            h = b.attn_norm(x)
            q = b.wq(h).view(1, T, cfg.n_heads, hd).transpose(1, 2)
            k = b.wk(h).view(1, T, cfg.n_kv_heads, hd).transpose(1, 2)
            v = b.wv(h).view(1, T, cfg.n_kv_heads, hd).transpose(1, 2)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            if len(cache) <= li:
                cache.append((k, v))
            else:
                pk, pv = cache[li]
                cache[li] = (torch.cat([pk, k], 2), torch.cat([pv, v], 2))
            K, V = cache[li]
            if rep > 1:
                K = K.repeat_interleave(rep, dim=1)
                V = V.repeat_interleave(rep, dim=1)
            att = (q @ K.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            S = K.shape[2]
            mask = torch.ones(T, S, dtype=torch.bool).triu(S - T + 1)
            att = att.masked_fill(mask, float("-inf")).softmax(-1)
            y = (att @ V).transpose(1, 2).reshape(1, T, cfg.n_heads * hd)
            x = x + b.wo(y)
            h = b.ffn_norm(x)
            x = x + b.w_down(F.silu(b.w_gate(h)) * b.w_up(h))
        x = self.norm(x)
        return (x @ self.embed.weight.t())[0]

    @torch.no_grad()
    def greedy(self, ids, n, stop=(), stop_fn=None):
        """Greedy continuation of ids (list) for up to n tokens; stops after a
        token in `stop` (not included) or when stop_fn(generated) is true."""
        cache = []
        logits = self.step(torch.tensor([ids]), cache)[-1]
        out = []
        for _ in range(n):
            t = int(torch.argmax(logits))
            if t in stop:
                break
            out.append(t)
            if stop_fn and stop_fn(out):
                break
            logits = self.step(torch.tensor([[t]]), cache)[-1]
        return out

    def n_params(self):
        return sum(p.numel() for p in self.parameters())


def load_checkpoint(path, map_location="cpu"):
    ck = torch.load(path, map_location=map_location)
    cfg = Config(**ck["config"])
    m = Model(cfg)
    m.load_state_dict(ck["model"])
    return m, ck
