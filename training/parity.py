#!/usr/bin/python3
"""Export parity: nib's greedy output equals PyTorch's on held-out FIM prompts.

  python3 parity.py --nib ../build/nib ../models/nib-coder.gguf ../models/nib-coder-draft.gguf

For each model, 20 held-out FIM prompts (eval.make_tasks, mixed languages)
are run through `nib eval -n 32` and through two PyTorch references on the
very weights in the GGUF file (Q8_0 dequantized):

- "float32": model.Model.step, plain float32 activations and KV cache;
- "nib-exact": nibref.NibRef, which rounds where nib rounds and sums the
  dot products in the order of nib's AVX-512 kernels (Q8_0 activation
  blocks, fp16 KV cache, fp16 query and softmax weights, double-summed
  RMSNorm, the fp32 RoPE table, llama.cpp's vector expf). Its logits are
  also compared with nib's top-5 logits at every prompt position
  (`max_top5_logit_diff`; nib prints 5 decimals, so 5e-6 means equal).

Checked: the prompt tokenization is identical, and the greedy continuation
(up to 32 tokens or end of generation) is identical. Where greedy differs,
the logit gap of the two candidates at the first difference, in that
reference, is reported, to tell a near-tie from a bug.
"""
import argparse, json, os, subprocess, sys, tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load_docs  # noqa: E402
from eval import fim_prompt, make_tasks  # noqa: E402
from export import model_from_gguf  # noqa: E402
from nibref import NibRef  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def first_diff(got, ref, ref_stopped):
    """None if nib's greedy tokens equal the reference's, else the index of
    the first difference."""
    if got == ref or (ref_stopped and got == ref[:-1]):
        return None
    return next((k for k, (a, b) in enumerate(zip(got, ref)) if a != b), min(len(got), len(ref)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--nib", required=True)
    ap.add_argument("--tok", default=os.path.join(HERE, "data", "tokenizer.json"))
    ap.add_argument("--test", default=os.path.join(HERE, "data", "test.jsonl"))
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tok = Tokenizer.load(args.tok)
    tasks = make_tasks(load_docs(args.test), 2, seed=7, pre_chars=800, suf_chars=300)
    # One task per language and kind first, so the 20 prompts mix languages.
    tasks = sorted(tasks, key=lambda t: (tasks.index(t) % 2, t["lang"]))[:args.n]
    eog = {tok.id(s) for s in ("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>")}
    tmp = tempfile.mkdtemp(prefix="nib-parity-")
    report = {}
    for mpath in args.models:
        f32, _ = model_from_gguf(mpath)
        exact = NibRef(mpath)
        res = {"prompts": 0, "tokens_equal": 0,
               "float32": {"greedy_equal": 0, "diffs": []},
               "nib-exact": {"greedy_equal": 0, "diffs": [], "max_top5_logit_diff": 0.0}}
        for i, t in enumerate(tasks):
            prompt = fim_prompt(t)
            pf = os.path.join(tmp, f"p{i}.txt")
            with open(pf, "w") as f:
                f.write(prompt)
            r = subprocess.run([args.nib, "eval", "-m", mpath, "-f", pf, "--top", "5",
                                "-n", str(args.gen)], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"nib eval failed: {r.stderr[-2000:]}")
            nib = json.loads(r.stdout)
            ids = tok.encode(prompt)
            got = nib["greedy"]
            res["prompts"] += 1
            res["tokens_equal"] += nib["prompt_tokens"] == ids
            # nib ends generation at any end-of-generation token (<|endoftext|>
            # and, as llama.cpp, <|fim_pad|>, <|file_sep|>, <|repo_name|>) and
            # prints that token last.
            for name in ("float32", "nib-exact"):
                if name == "float32":
                    ref = f32.greedy(ids, args.gen)
                else:
                    cache = []
                    lg = exact.step(ids, cache, all_logits=True)
                    worst = max(abs(float(lg[p, tid]) - v)
                                for p, top in enumerate(nib["top_logits"]) for tid, v in top)
                    res[name]["max_top5_logit_diff"] = max(res[name]["max_top5_logit_diff"], worst)
                    ref = exact.greedy(ids, args.gen)
                stop = next((k for k, x in enumerate(ref) if x in eog), None)
                ref_cut = ref if stop is None else ref[:stop + 1]
                j = first_diff(got, ref_cut, stop is not None)
                if j is None:
                    res[name]["greedy_equal"] += 1
                    continue
                gap = None
                if j < len(got) and j < len(ref):
                    with torch.no_grad():
                        if name == "float32":
                            lg = f32.step(torch.tensor([ids + ref[:j]]), [])[-1]
                        else:
                            lg = exact.step(ids + ref[:j], [])[-1]
                    gap = float(lg[ref[j]] - lg[got[j]])
                res[name]["diffs"].append({"prompt": i, "lang": t["lang"], "first_diff": j,
                                           "torch_minus_nib_logit_gap": gap})
        print(os.path.basename(mpath), json.dumps(res), flush=True)
        report[os.path.basename(mpath)] = res
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
