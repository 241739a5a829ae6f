#!/usr/bin/python3
"""Train a nib code model (target, or a draft distilled from a target).

  python3 train.py --preset target --out runs/target --minutes 95
  python3 train.py --preset draft --out runs/draft --minutes 95 \
      --teacher runs/target/ckpt.pt --distill-from 0.3

The learning-rate schedule (warmup, cosine decay to 10%) follows wall-clock
time instead of steps, so a run ends on time with a fully decayed learning
rate whatever the machine's speed. Checkpoints (runs/X/ckpt.pt) are written
every few minutes and atomically; --resume continues one.

A draft with --teacher is trained on 0.5 * cross-entropy + 0.5 * KL(teacher ||
draft) over the whole vocabulary, once --distill-from of the time has
passed. The teacher checkpoint is re-read every --teacher-reload seconds, so
target and draft can train side by side and the draft follows the target.
"""
import argparse, json, math, os, sys, time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import Sampler, load_docs  # noqa: E402
from model import PRESETS, Config, Model, load_checkpoint  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def save(path, model, opt, cfg, state):
    tmp = path + ".tmp"
    torch.save({"config": cfg.to_dict(), "model": model.state_dict(),
                "opt": opt.state_dict(), "state": state}, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="target", choices=sorted(PRESETS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default=os.path.join(HERE, "data", "train.jsonl"))
    ap.add_argument("--tok", default=os.path.join(HERE, "data", "tokenizer.json"))
    ap.add_argument("--minutes", type=float, default=None, help="wall-clock budget")
    ap.add_argument("--steps", type=int, default=None, help="or a fixed number of steps")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--long-seq", type=int, default=1024,
                    help="sequence length for the last --long-frac of training")
    ap.add_argument("--long-frac", type=float, default=0.15)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=float, default=0.03, help="fraction of the budget")
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--fim-rate", type=float, default=0.5)
    ap.add_argument("--spm-rate", type=float, default=0.5, help="share of FIM samples in SPM order")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--teacher", default=None)
    ap.add_argument("--distill-from", type=float, default=0.0)
    ap.add_argument("--distill-weight", type=float, default=0.5)
    ap.add_argument("--teacher-reload", type=float, default=600)
    ap.add_argument("--ckpt-every", type=float, default=300, help="seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", default=None,
                    help="start from these weights (.pt checkpoint or .gguf), e.g. to "
                         "fine-tune the shipped model on your own code")
    ap.add_argument("--log-every", type=int, default=10)
    args = ap.parse_args()
    assert (args.minutes is None) != (args.steps is None), "give --minutes or --steps"

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    dev = torch.device(args.device)
    tok = Tokenizer.load(args.tok)
    cfg = Config(**{**PRESETS[args.preset].to_dict(), "n_vocab": tok.n_vocab,
                    "ctx": max(args.seq, args.long_seq if args.long_frac > 0 else 0)})
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    model = Model(cfg).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    state = {"step": 0, "elapsed": 0.0, "tokens": 0}
    if args.init:
        if args.init.endswith(".gguf"):
            from export import model_from_gguf
            src, _ = model_from_gguf(args.init)
        else:
            src, _ = load_checkpoint(args.init)
        assert src.cfg.to_dict() == {**cfg.to_dict(), "ctx": src.cfg.ctx}, \
            f"--init model {src.cfg} does not match preset {cfg}"
        model.load_state_dict(src.state_dict())
        print(f"initialised from {args.init}", flush=True)
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        print(f"resumed at step {state['step']}", flush=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({"config": cfg.to_dict(), "args": vars(args)}, f, indent=1)
    print(f"{args.preset}: {model.n_params() / 1e6:.2f}M params, {cfg}", flush=True)

    docs = load_docs(args.data)
    sampler = Sampler(docs, tok, seed=args.seed + state["step"], fim_rate=args.fim_rate,
                      spm_rate=args.spm_rate)
    use_bf16 = not args.no_bf16

    teacher, teacher_mtime, teacher_check = None, 0.0, 0.0

    def progress():
        if args.minutes is not None:
            return state["elapsed"] / (args.minutes * 60)
        return state["step"] / args.steps

    t_last_ckpt = time.time()
    t_log, tok_log = time.time(), 0
    loss_acc, n_acc = 0.0, 0
    while progress() < 1.0:
        t0 = time.time()
        p = progress()
        lr_scale = p / args.warmup if p < args.warmup else \
            0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (p - args.warmup) / (1 - args.warmup)))
        for g in opt.param_groups:
            g["lr"] = args.lr * lr_scale
        long = args.long_frac > 0 and p >= 1 - args.long_frac
        T = args.long_seq if long else args.seq
        B = max(1, args.batch * args.seq // T)
        x = torch.from_numpy(sampler.batch(B, T)).to(dev)
        inp, tgt = x[:, :-1], x[:, 1:]

        distill = args.teacher and p >= args.distill_from
        if distill and time.time() - teacher_check > 30:
            teacher_check = time.time()
            if os.path.exists(args.teacher):
                mt = os.path.getmtime(args.teacher)
                if mt != teacher_mtime and time.time() - teacher_mtime > args.teacher_reload:
                    teacher, _ = load_checkpoint(args.teacher, map_location=dev)
                    teacher.eval()
                    teacher_mtime = mt
                    print(f"teacher (re)loaded from {args.teacher}", flush=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(inp)
            tlogits = None
            if distill and teacher is not None:
                with torch.no_grad():
                    tlogits = teacher(inp)
        logits = logits.float()
        ce = F.cross_entropy(logits.view(-1, cfg.n_vocab), tgt.reshape(-1))
        loss = ce
        if tlogits is not None:
            kl = F.kl_div(F.log_softmax(logits, -1).view(-1, cfg.n_vocab),
                          F.log_softmax(tlogits.float(), -1).view(-1, cfg.n_vocab),
                          log_target=True, reduction="batchmean")
            loss = (1 - args.distill_weight) * ce + args.distill_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

        state["step"] += 1
        state["tokens"] += B * T
        state["elapsed"] += time.time() - t0
        loss_acc += ce.item()
        n_acc += 1
        tok_log += B * T
        if state["step"] % args.log_every == 0:
            dt = time.time() - t_log
            print(json.dumps({"step": state["step"], "ce": round(loss_acc / n_acc, 4),
                              "lr": round(args.lr * lr_scale, 6), "T": T,
                              "tok_s": round(tok_log / dt), "tokens": state["tokens"],
                              "min": round(state["elapsed"] / 60, 1), "progress": round(p, 4),
                              "distill": bool(tlogits is not None)}), flush=True)
            t_log, tok_log, loss_acc, n_acc = time.time(), 0, 0.0, 0
        if time.time() - t_last_ckpt > args.ckpt_every:
            save(ckpt_path, model, opt, cfg, state)
            t_last_ckpt = time.time()
    save(ckpt_path, model, opt, cfg, state)
    print(f"done: {state['step']} steps, {state['tokens']} tokens, "
          f"{state['elapsed'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
