#!/usr/bin/python3
"""Evaluate nib's code models on the held-out split.

  python3 eval.py --target M.gguf --draft D.gguf --out runs/eval.json

Models are .gguf files (evaluated with exactly the exported weights, Q8_0
dequantized) or training checkpoints (.pt). Reported:

- perplexity per language: mean token NLL over up to --ppl-tokens tokens
  of held-out files per language, in windows of --ctx tokens;
- FIM single-line: the cursor sits at a random point after the indentation
  of a line; the answer is the rest of that line. Greedy decoding stops at
  <|endoftext|> or a newline; exact match after trimming trailing spaces;
- FIM multi-line: the middle is 2-5 whole lines; greedy decoding up to 128
  tokens, the prediction is cut to the same number of lines as the answer
  and scored by edit similarity (1 - Levenshtein / longer length);
- the baseline copies the most similar earlier line (single line: the
  earlier line whose beginning best matches the typed part of the current
  line, minus that part; multi-line: the lines that followed the earlier
  line most similar to the line above the cursor);
- draft acceptance: along the target's greedy continuation of the
  multi-line prompts, how often the draft's greedy token equals the
  target's, and what greedy speculative decoding with k draft tokens gets
  (accepted / proposed and tokens per target forward).

Prompts are PSM: <|fim_prefix|>prefix<|fim_suffix|>suffix<|fim_middle|>.
"""
import argparse, json, math, os, random, sys, time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load_docs  # noqa: E402
from export import model_from_gguf  # noqa: E402
from model import load_checkpoint  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def load_model(path):
    if path.endswith(".gguf"):
        m, _ = model_from_gguf(path)
    else:
        m, _ = load_checkpoint(path)
    return m.eval()


def levenshtein(a, b):
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def edit_sim(a, b):
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


# ---------------------------------------------------------------------------
# FIM tasks
# ---------------------------------------------------------------------------

def make_tasks(docs, per_lang, seed=0, pre_chars=1500, suf_chars=500):
    """Deterministic FIM tasks: [{lang, kind, prefix, suffix, middle}]."""
    rng = random.Random(seed)
    by_lang = {}
    for d in docs:
        by_lang.setdefault(d["lang"], []).append(d)
    tasks = []
    for lang in sorted(by_lang):
        ds = by_lang[lang]
        for kind in ("single", "multi"):
            made, tries = 0, 0
            while made < per_lang and tries < per_lang * 50:
                tries += 1
                text = rng.choice(ds)["text"]
                lines = text.split("\n")
                if len(lines) < 12:
                    continue
                li = rng.randrange(3, len(lines) - 6)
                line = lines[li]
                start = sum(len(x) + 1 for x in lines[:li])
                if kind == "single":
                    stripped = line.lstrip()
                    if len(stripped) < 6:
                        continue
                    ind = len(line) - len(stripped)
                    c = rng.randrange(ind, len(line) - 1)
                    cur = start + c
                    mid = line[c:]
                    end = start + len(line)
                else:
                    k = rng.randint(2, 5)
                    block = lines[li:li + k]
                    if sum(len(x.strip()) for x in block) < 10:
                        continue
                    cur = start
                    mid = "\n".join(block) + "\n"
                    end = start + len(mid)
                prefix = text[max(0, cur - pre_chars):cur]
                if cur > pre_chars:  # start at a line boundary
                    nl = prefix.find("\n")
                    prefix = prefix[nl + 1:] if nl >= 0 else prefix
                suffix = text[end:end + suf_chars]
                tasks.append({"lang": lang, "kind": kind, "prefix": prefix,
                              "suffix": suffix, "middle": mid})
                made += 1
    return tasks


def fim_prompt(t):
    return "<|fim_prefix|>" + t["prefix"] + "<|fim_suffix|>" + t["suffix"] + "<|fim_middle|>"


def postprocess(kind, pred, truth):
    if kind == "single":
        return pred.split("\n", 1)[0]
    n = truth.rstrip("\n").count("\n") + 1
    return "\n".join(pred.split("\n")[:n])


def score(kind, pred, truth):
    if kind == "single":
        return float(pred.rstrip() == truth.rstrip())
    return edit_sim(pred.rstrip(), truth.rstrip())


def run_model_fim(model, tok, task, max_new=None):
    ids = tok.encode(fim_prompt(task))
    eot = tok.id("<|endoftext|>")
    single = task["kind"] == "single"
    n = max_new or (48 if single else 128)
    stop_fn = (lambda out: b"\n" in tok.decode_bytes(out[-1:])) if single else None
    out = model.greedy(ids, n, stop=(eot,), stop_fn=stop_fn)
    return tok.decode(out), ids, out


def baseline(task):
    pre_lines = task["prefix"].split("\n")
    earlier, typed = pre_lines[:-1], pre_lines[-1]
    if task["kind"] == "single":
        ts = typed.lstrip()
        best, bs = "", -1.0
        for L in earlier:
            s = L.strip()
            if len(s) <= len(ts):
                continue
            sc = edit_sim(s[:len(ts)], ts) if ts else 0.5
            if sc >= bs:
                best, bs = s[len(ts):], sc
        return best
    # multi-line: the cursor is at a line start, so `typed` is empty
    n = task["middle"].rstrip("\n").count("\n") + 1
    if len(earlier) < 2:
        return ""
    ref = earlier[-1].strip()
    best, bs = None, -1.0
    for i, L in enumerate(earlier[:-1]):
        sc = edit_sim(L.strip(), ref)
        if sc >= bs:
            best, bs = i, sc
    return "\n".join(earlier[best + 1:best + 1 + n])


# ---------------------------------------------------------------------------
# Perplexity
# ---------------------------------------------------------------------------

@torch.no_grad()
def perplexity(model, tok, docs, max_tokens, ctx):
    res = {}
    by_lang = {}
    for d in docs:
        by_lang.setdefault(d["lang"], []).append(d)
    eot = tok.id("<|endoftext|>")
    for lang in sorted(by_lang):
        stream = []
        for d in by_lang[lang]:
            stream += tok.encode_ordinary(d["text"]) + [eot]
            if len(stream) > max_tokens:
                break
        stream = stream[:max_tokens + 1]
        nll, n = 0.0, 0
        wins = [stream[i:i + ctx + 1] for i in range(0, len(stream) - 1, ctx)]
        for i in range(0, len(wins), 8):
            batch = [w for w in wins[i:i + 8] if len(w) == ctx + 1]
            if not batch:
                for w in wins[i:i + 8]:  # ragged tail
                    x = torch.tensor([w])
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        lg = model(x[:, :-1])
                    nll += F.cross_entropy(lg.float()[0], x[0, 1:], reduction="sum").item()
                    n += len(w) - 1
                continue
            x = torch.tensor(batch)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                lg = model(x[:, :-1])
            nll += F.cross_entropy(lg.float().reshape(-1, lg.shape[-1]), x[:, 1:].reshape(-1),
                                   reduction="sum").item()
            n += x[:, 1:].numel()
        res[lang] = {"ppl": math.exp(nll / max(1, n)), "tokens": n}
    return res


@torch.no_grad()
def acceptance(target, draft, tok, tasks, n_gen=48, k=4):
    agree, total = 0, 0
    acc, prop, fwd, gen = 0, 0, 0, 0
    eot = tok.id("<|endoftext|>")
    for t in tasks:
        ids = tok.encode(fim_prompt(t))
        out = target.greedy(ids, n_gen)  # includes <|endoftext|> if produced
        if eot in out:
            out = out[:out.index(eot) + 1]
        if not out:
            continue
        lg = draft.step(torch.tensor([ids + out[:-1]]), [])
        dpred = lg[len(ids) - 1:].argmax(-1).tolist()
        m = [int(a == b) for a, b in zip(dpred, out)]
        agree += sum(m)
        total += len(m)
        pos = 0
        while pos < len(m):
            j = 0
            while j < k and pos + j < len(m) and m[pos + j]:
                j += 1
            acc += j
            prop += k
            fwd += 1
            pos += j + 1
        gen += len(m)
    return {"token_agreement": agree / max(1, total), "k": k,
            "accepted_per_proposed": acc / max(1, prop),
            "tokens_per_target_forward": gen / max(1, fwd), "tokens": total}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--draft")
    ap.add_argument("--tok", default=os.path.join(HERE, "data", "tokenizer.json"))
    ap.add_argument("--test", default=os.path.join(HERE, "data", "test.jsonl"))
    ap.add_argument("--per-lang", type=int, default=10, help="FIM tasks per language and kind")
    ap.add_argument("--ppl-tokens", type=int, default=12000)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tok = Tokenizer.load(args.tok)
    docs = load_docs(args.test)
    tasks = make_tasks(docs, args.per_lang)
    models = {"target": load_model(args.target)}
    if args.draft:
        models["draft"] = load_model(args.draft)
    report = {"n_tasks": len(tasks), "models": {}}
    t0 = time.time()
    for name, m in models.items():
        r = {"params": m.n_params(), "ppl": perplexity(m, tok, docs, args.ppl_tokens, args.ctx)}
        print(name, "ppl", json.dumps(r["ppl"]), f"{time.time() - t0:.0f}s", flush=True)
        fim = {}
        for t in tasks:
            pred, _, _ = run_model_fim(m, tok, t)
            s = score(t["kind"], postprocess(t["kind"], pred, t["middle"]), t["middle"])
            fim.setdefault(t["kind"], {}).setdefault(t["lang"], []).append(s)
        r["fim"] = fim
        report["models"][name] = r
        print(name, "fim done", f"{time.time() - t0:.0f}s", flush=True)
    fim = {}
    for t in tasks:
        s = score(t["kind"], postprocess(t["kind"], baseline(t), t["middle"]), t["middle"])
        fim.setdefault(t["kind"], {}).setdefault(t["lang"], []).append(s)
    report["models"]["baseline"] = {"fim": fim}
    if args.draft:
        report["acceptance"] = acceptance(models["target"], models["draft"], tok,
                                          [t for t in tasks if t["kind"] == "multi"])
        print("acceptance", json.dumps(report["acceptance"]), flush=True)
    print(markdown(report))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


def markdown(rep):
    names = [n for n in ("target", "draft") if n in rep["models"]]
    langs = sorted(rep["models"]["target"]["ppl"])
    lines = ["| language | " + " | ".join(f"{n} ppl" for n in names) + " | "
             + " | ".join(f"{n} 1-line EM" for n in names + ["baseline"]) + " | "
             + " | ".join(f"{n} multi-line ES" for n in names + ["baseline"]) + " |",
             "|---" * (1 + len(names) + 2 * (len(names) + 1)) + "|"]

    def mean(x):
        return sum(x) / len(x) if x else float("nan")
    allnames = names + ["baseline"]
    for lang in langs + ["all"]:
        row = [lang]
        for n in names:
            p = rep["models"][n]["ppl"]
            if lang == "all":
                tot = sum(v["tokens"] for v in p.values())
                row.append(f"{math.exp(sum(math.log(v['ppl']) * v['tokens'] for v in p.values()) / tot):.2f}")
            else:
                row.append(f"{p[lang]['ppl']:.2f}")
        for kind in ("single", "multi"):
            for n in allnames:
                f = rep["models"][n]["fim"].get(kind, {})
                xs = sum(f.values(), []) if lang == "all" else f.get(lang, [])
                row.append(f"{mean(xs):.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
