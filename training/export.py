#!/usr/bin/python3
"""Export a training checkpoint to GGUF (qwen2 architecture, llama.cpp names).

  python3 export.py runs/target/ckpt.pt out.f16.gguf --name nib-coder
  python3 export.py runs/target/ckpt.pt out.q8_0.gguf --type q8_0   # Python Q8_0

The normal path is F16 here, then `nib quantize in.gguf out.gguf Q8_0`;
--type q8_0 quantizes in Python (same block format) when nib is not at hand.
1-D tensors (norms, biases) are always F32, as llama.cpp stores them.

`model_from_gguf()` rebuilds the PyTorch model from a GGUF file (dequantizing
Q8_0), which the parity check uses so that PyTorch and nib run the very same
weights.
"""
import argparse, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf  # noqa: E402
from model import Config, Model, load_checkpoint  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# (gguf name pattern, state_dict name pattern)
LAYER_MAP = [
    ("blk.{i}.attn_norm.weight", "blocks.{i}.attn_norm.weight"),
    ("blk.{i}.attn_q.weight", "blocks.{i}.wq.weight"),
    ("blk.{i}.attn_q.bias", "blocks.{i}.wq.bias"),
    ("blk.{i}.attn_k.weight", "blocks.{i}.wk.weight"),
    ("blk.{i}.attn_k.bias", "blocks.{i}.wk.bias"),
    ("blk.{i}.attn_v.weight", "blocks.{i}.wv.weight"),
    ("blk.{i}.attn_v.bias", "blocks.{i}.wv.bias"),
    ("blk.{i}.attn_output.weight", "blocks.{i}.wo.weight"),
    ("blk.{i}.ffn_norm.weight", "blocks.{i}.ffn_norm.weight"),
    ("blk.{i}.ffn_gate.weight", "blocks.{i}.w_gate.weight"),
    ("blk.{i}.ffn_up.weight", "blocks.{i}.w_up.weight"),
    ("blk.{i}.ffn_down.weight", "blocks.{i}.w_down.weight"),
]
GLOBAL_MAP = [("token_embd.weight", "embed.weight"), ("output_norm.weight", "norm.weight")]


def name_map(n_layers):
    m = list(GLOBAL_MAP)
    for i in range(n_layers):
        m += [(g.format(i=i), s.format(i=i)) for g, s in LAYER_MAP]
    return m


def write_gguf(model, tok, path, wtype="f16", name="nib-coder", ctx=None):
    cfg = model.cfg
    w = gguf.Writer()
    w.str("general.architecture", "qwen2")
    w.str("general.name", name)
    w.str("general.license", "MIT")
    w.u32("general.alignment", gguf.ALIGN)
    w.u32("general.file_type", {"f16": 1, "q8_0": 7, "f32": 0}[wtype])
    if wtype == "q8_0":
        w.u32("general.quantization_version", 2)
    w.u32("qwen2.context_length", ctx or cfg.ctx)
    w.u32("qwen2.embedding_length", cfg.dim)
    w.u32("qwen2.block_count", cfg.n_layers)
    w.u32("qwen2.feed_forward_length", cfg.ffn_dim)
    w.u32("qwen2.attention.head_count", cfg.n_heads)
    w.u32("qwen2.attention.head_count_kv", cfg.n_kv_heads)
    w.f32("qwen2.rope.freq_base", cfg.rope_base)
    w.f32("qwen2.attention.layer_norm_rms_epsilon", cfg.norm_eps)
    # Tokenizer: GPT-2 style byte-level BPE with Qwen2's pre-tokenizer.
    w.str("tokenizer.ggml.model", "gpt2")
    w.str("tokenizer.ggml.pre", "qwen2")
    toks = tok.token_strings()
    assert len(toks) == cfg.n_vocab, (len(toks), cfg.n_vocab)
    w.arr_str("tokenizer.ggml.tokens", toks)
    w.arr_i32("tokenizer.ggml.token_type",
              [3 if t in tok.special_ids else 1 for t in toks])
    w.arr_str("tokenizer.ggml.merges", tok.merge_strings())
    eot = tok.id("<|endoftext|>")
    w.u32("tokenizer.ggml.bos_token_id", eot)
    w.u32("tokenizer.ggml.eos_token_id", eot)
    w.u32("tokenizer.ggml.eot_token_id", eot)
    w.u32("tokenizer.ggml.padding_token_id", eot)
    w.bool("tokenizer.ggml.add_bos_token", False)
    w.bool("tokenizer.ggml.add_eos_token", False)
    w.u32("tokenizer.ggml.fim_pre_token_id", tok.id("<|fim_prefix|>"))
    w.u32("tokenizer.ggml.fim_suf_token_id", tok.id("<|fim_suffix|>"))
    w.u32("tokenizer.ggml.fim_mid_token_id", tok.id("<|fim_middle|>"))
    w.u32("tokenizer.ggml.fim_pad_token_id", tok.id("<|fim_pad|>"))
    w.u32("tokenizer.ggml.fim_rep_token_id", tok.id("<|repo_name|>"))
    w.u32("tokenizer.ggml.fim_sep_token_id", tok.id("<|file_sep|>"))
    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    big = {"f16": gguf.GGML_F16, "q8_0": gguf.GGML_Q8_0, "f32": gguf.GGML_F32}[wtype]
    for gname, sname in name_map(cfg.n_layers):
        a = sd[sname]
        w.tensor(gname, a, big if a.ndim == 2 else gguf.GGML_F32)
    w.write(path)


def model_from_gguf(path):
    """The PyTorch model on the GGUF's weights (Q8_0 dequantized), float32.
    nibref.NibRef runs the same weights with nib's exact rounding."""
    kv, t, _ = gguf.read(path)
    p = "qwen2."
    cfg = Config(n_vocab=len(kv["tokenizer.ggml.tokens"]), dim=kv[p + "embedding_length"],
                 n_layers=kv[p + "block_count"], n_heads=kv[p + "attention.head_count"],
                 n_kv_heads=kv[p + "attention.head_count_kv"],
                 ffn_dim=kv[p + "feed_forward_length"], ctx=kv[p + "context_length"],
                 rope_base=kv[p + "rope.freq_base"],
                 norm_eps=kv[p + "attention.layer_norm_rms_epsilon"])
    m = Model(cfg)
    sd = {s: torch.from_numpy(np.array(t[g])) for g, s in name_map(cfg.n_layers)}
    m.load_state_dict(sd)
    return m.eval(), kv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("out")
    ap.add_argument("--type", default="f16", choices=["f16", "q8_0", "f32"])
    ap.add_argument("--name", default="nib-coder")
    ap.add_argument("--tok", default=os.path.join(HERE, "data", "tokenizer.json"))
    ap.add_argument("--ctx", type=int, default=None,
                    help="context_length to declare (default: the checkpoint's training length)")
    args = ap.parse_args()
    model, ck = load_checkpoint(args.ckpt)
    tok = Tokenizer.load(args.tok)
    write_gguf(model, tok, args.out, args.type, args.name, ctx=args.ctx)
    # Read it back: every tensor must round-trip (exactly for F32/F16 up to
    # the F16 rounding, within the Q8_0 step for Q8_0).
    m2, _ = model_from_gguf(args.out)
    sd1, sd2 = model.state_dict(), m2.state_dict()
    worst = max(float((sd1[k].float() - sd2[k].float()).abs().max()) for k in sd1)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB), "
          f"{model.n_params() / 1e6:.2f}M params, max round-trip error {worst:.2e}")


if __name__ == "__main__":
    main()
