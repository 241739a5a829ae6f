#!/usr/bin/python3
"""CI smoke test of the training pipeline, end to end, in well under a minute.

Builds a tiny corpus from this repository's own sources, trains a 512-token
BPE and a tiny qwen2 model for 20 steps, exports F16 GGUF, quantizes it
with `nib quantize` to Q8_0, and checks on both files that nib loads them,
tokenizes a FIM prompt exactly as Python does, produces the same top logits
as PyTorch on the same weights, and generates text.

  smoke.py PATH_TO_NIB        (exit 77 = skipped: no torch/numpy/regex)
"""
import json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "training")
sys.path.insert(0, TRAIN)
try:
    import numpy  # noqa: F401
    import regex  # noqa: F401
    import torch
except ImportError as e:
    print(f"skip: {e} (training needs Debian's python3-torch, python3-numpy, python3-regex)")
    sys.exit(77)

NIB = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "nib")
PY = sys.executable


def run(*cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        print("FAILED:", " ".join(cmd), "\n", r.stdout[-3000:], r.stderr[-3000:])
        sys.exit(1)
    return r.stdout


def main():
    tmp = tempfile.mkdtemp(prefix="nib-train-smoke-")
    docs = []
    for sub, ext, lang in (("training", ".py", "python"), ("engine", ".c", "c"),
                           ("engine", ".h", "c"), ("tests", ".c", "c")):
        d = os.path.join(ROOT, sub)
        for fn in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if fn.endswith(ext):
                text = open(os.path.join(d, fn), encoding="utf-8").read()
                docs.append({"pkg": "nib", "lang": lang, "path": f"{sub}/{fn}", "text": text})
    corpus = os.path.join(tmp, "train.jsonl")
    with open(corpus, "w") as f:
        for r in docs:
            f.write(json.dumps(r) + "\n")
    tokf = os.path.join(tmp, "tok.json")
    run(PY, os.path.join(TRAIN, "tokenizer.py"), "train", "--data", corpus, "--vocab", "512",
        "--sample-mb", "1", "--out", tokf)
    out = os.path.join(tmp, "run")
    log = run(PY, os.path.join(TRAIN, "train.py"), "--preset", "tiny", "--data", corpus,
              "--tok", tokf, "--steps", "20", "--batch", "4", "--seq", "128", "--long-frac", "0",
              "--out", out, "--log-every", "10", "--threads", "1")
    ces = [json.loads(l)["ce"] for l in log.splitlines() if l.startswith("{")]
    print("training ce:", ces)
    assert len(ces) == 2 and ces[-1] < 6.3, "20 steps should bring the loss below ln(512)"
    f16 = os.path.join(tmp, "m.f16.gguf")
    run(PY, os.path.join(TRAIN, "export.py"), os.path.join(out, "ckpt.pt"), f16, "--tok", tokf,
        "--name", "smoke")
    q8 = os.path.join(tmp, "m.q8_0.gguf")
    r = subprocess.run([NIB, "quantize", f16, q8, "Q8_0"], capture_output=True, text=True)
    if r.returncode != 0:
        # Older nib without the quantize command: the Python exporter writes
        # the same Q8_0 block format.
        print("nib quantize unavailable, Q8_0 from export.py:", (r.stderr or r.stdout).strip()[:200])
        run(PY, os.path.join(TRAIN, "export.py"), os.path.join(out, "ckpt.pt"), q8, "--tok", tokf,
            "--type", "q8_0", "--name", "smoke")

    from export import model_from_gguf
    from tokenizer import Tokenizer
    tok = Tokenizer.load(tokf)
    prompt = ("<|fim_prefix|>static int add(int a, int b) {\n    return <|fim_suffix|>;\n}\n"
              "<|fim_middle|>")
    pf = os.path.join(tmp, "prompt.txt")
    with open(pf, "w") as f:
        f.write(prompt)
    want_ids = tok.encode(prompt)
    for path, tol in ((f16, 0.02), (q8, 0.06)):
        res = json.loads(run(NIB, "eval", "-m", path, "-f", pf, "--top", "5", "-n", "8"))
        assert res["prompt_tokens"] == want_ids, (res["prompt_tokens"], want_ids)
        model, _ = model_from_gguf(path)
        with torch.no_grad():
            logits = model.step(torch.tensor([want_ids]), [])
        worst = 0.0
        for pos, top in enumerate(res["top_logits"]):
            for tid, val in top:
                ref = float(logits[pos, tid])
                worst = max(worst, abs(ref - val) / max(1.0, abs(ref)))
        print(f"{os.path.basename(path)}: prompt tokens equal, worst top-5 logit error {worst:.4f}, "
              f"greedy {res['greedy']}")
        assert worst < tol, f"nib's logits differ from PyTorch's by {worst}"
        text = run(NIB, "generate", "-m", path, "-p", "def main():\n    ", "-n", "8")
        print(f"generate: {text!r}")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
