#!/usr/bin/python3
"""Export parity: nib's greedy output equals PyTorch's on held-out FIM prompts.

  python3 parity.py --nib ../build-train/nib models/nib-coder.gguf models/nib-coder-draft.gguf

For each model, 20 held-out FIM prompts (eval.make_tasks, mixed languages)
are run through `nib eval -n 32` and through PyTorch on the very weights in
the GGUF file (Q8_0 dequantized), rounding activations as nib does: Q8_0
blocks before each Q8_0 matmul, fp16 for F16 weights and the KV cache
(--no-emulate: plain float32). Checked: the prompt
tokenization is identical, and the greedy continuation (up to 32 tokens or
end of generation) is identical. Where greedy differs, the logit gap of the
two candidates at the first difference is reported, to tell a near-tie
(activation quantization in nib's Q8_0 matmuls) from a bug.
"""
import argparse, json, os, subprocess, sys, tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load_docs  # noqa: E402
from eval import fim_prompt, make_tasks  # noqa: E402
from export import model_from_gguf  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--nib", required=True)
    ap.add_argument("--tok", default=os.path.join(HERE, "data", "tokenizer.json"))
    ap.add_argument("--test", default=os.path.join(HERE, "data", "test.jsonl"))
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-emulate", dest="emulate", action="store_false",
                    help="plain float32 reference instead of nib's activation rounding")
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
        model, _ = model_from_gguf(mpath, emulate=args.emulate)
        res = {"prompts": 0, "tokens_equal": 0, "greedy_equal": 0, "diffs": []}
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
            # nib ends generation at any end-of-generation token (<|endoftext|>
            # and, as llama.cpp, <|fim_pad|>, <|file_sep|>, <|repo_name|>) and
            # prints that token last.
            ref = model.greedy(ids, args.gen)
            stop = next((k for k, x in enumerate(ref) if x in eog), None)
            ref_cut = ref if stop is None else ref[:stop + 1]
            got = nib["greedy"]
            res["prompts"] += 1
            res["tokens_equal"] += nib["prompt_tokens"] == ids
            same = got == ref_cut or got == ref_cut[:-1] and stop is not None
            res["greedy_equal"] += same
            if not same:
                j = next((k for k, (a, b) in enumerate(zip(got, ref)) if a != b), min(len(got), len(ref)))
                with torch.no_grad():
                    lg = model.step(torch.tensor([ids + ref[:j]]), [])[-1]
                gap = None
                if j < len(got) and j < len(ref):
                    gap = float(lg[ref[j]] - lg[got[j]])
                res["diffs"].append({"prompt": i, "lang": t["lang"], "first_diff": j,
                                     "torch_minus_nib_logit_gap": gap})
        print(os.path.basename(mpath), json.dumps(res), flush=True)
        report[os.path.basename(mpath)] = res
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
