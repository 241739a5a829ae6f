#!/usr/bin/python3
"""training/tokenizer.py's pre-tokenizer and merge order against llama.cpp's
qwen2 test vectors (../shared/vocab). Exit 77 (skip) without ../shared or regex."""
import os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "training"))
VOC = os.path.join(ROOT, "..", "shared", "vocab", "ggml-vocab-qwen2.gguf")
if not os.path.exists(VOC):
    print("skip: ../shared/vocab is absent")
    sys.exit(77)
try:
    import numpy  # noqa: F401
    import regex  # noqa: F401
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)
import gguf  # noqa: E402
from tokenizer import VocabBPE  # noqa: E402

kv, _, _ = gguf.read(VOC)
bpe = VocabBPE(kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.merges"])
inp = open(VOC + ".inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
out = open(VOC + ".out").read().split("\n")
bad = 0
for i, (s, o) in enumerate(zip(inp, out)):
    want = [int(x) for x in o.split()]
    got = bpe.encode(s)
    if got != want:
        bad += 1
        print(f"vector {i} {s!r}: got {got} want {want}")
print(f"{len(inp) - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
