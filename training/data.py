"""Training samples: next-token prediction and fill-in-the-middle.

Rows are packed from samples of random files until they hold T+1 tokens.
About half the samples are FIM: the document window is cut at character
level (a cursor can sit in the middle of a word, as in an editor) and laid
out in one of two orders:

  PSM: <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle <|endoftext|>
  SPM: <|fim_suffix|> suffix <|fim_prefix|> prefix <|fim_middle|> middle <|endoftext|>

PSM is the layout Qwen2.5-Coder uses and the one nib sends at inference.
The middle is the rest of a line (40%), 1-6 whole lines (30%) or a random
character span (30%).
"""
import json
import random

import numpy as np


def load_docs(path, langs=None):
    docs = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if langs and r["lang"] not in langs:
                continue
            docs.append(r)
    return docs


def fim_split(text, rng):
    """Pick (prefix, middle, suffix) of text; returns None if text is too short."""
    n = len(text)
    if n < 20:
        return None
    u = rng.random()
    if u < 0.4:  # rest of the current line
        c = rng.randrange(n)
        e = text.find("\n", c)
        if e < 0:
            e = n
        return text[:c], text[c:e], text[e:]
    if u < 0.7:  # whole lines
        starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n" and i + 1 < n]
        a = rng.randrange(len(starts))
        b = min(len(starts), a + rng.randint(1, 6))
        s = starts[a]
        e = starts[b] if b < len(starts) else n
        return text[:s], text[s:e], text[e:]
    i, j = sorted(rng.randrange(n + 1) for _ in range(2))
    j = min(j, i + max(1, n // 3))
    return text[:i], text[i:j], text[j:]


def fim_tokens(tok, pre, mid, suf, spm):
    P, S, M, E = (tok.id("<|fim_prefix|>"), tok.id("<|fim_suffix|>"),
                  tok.id("<|fim_middle|>"), tok.id("<|endoftext|>"))
    ep, es, em = tok.encode_ordinary(pre), tok.encode_ordinary(suf), tok.encode_ordinary(mid)
    if spm:
        return [S] + es + [P] + ep + [M] + em + [E]
    return [P] + ep + [S] + es + [M] + em + [E]


class Sampler:
    def __init__(self, docs, tok, seed=0, fim_rate=0.5, spm_rate=0.5):
        self.docs = docs
        self.tok = tok
        self.rng = random.Random(seed)
        self.fim_rate = fim_rate
        self.spm_rate = spm_rate
        # Files are drawn in proportion to their length (every byte equally
        # likely), capped so one huge file does not dominate.
        w = np.array([min(len(d["text"]), 40000) for d in docs], dtype=np.float64)
        self.cum = np.cumsum(w / w.sum())
        self.eot = tok.id("<|endoftext|>")

    def _doc(self):
        i = int(np.searchsorted(self.cum, self.rng.random()))
        return self.docs[min(i, len(self.docs) - 1)]["text"]

    def _window(self, text, nchars):
        if len(text) <= nchars:
            return text, True
        s = self.rng.randrange(len(text) - nchars)
        nl = text.find("\n", s)
        if 0 <= nl < s + 200:
            s = nl + 1
        return text[s:s + nchars], s + nchars >= len(text)

    def row(self, T):
        buf = []
        while len(buf) < T + 1:
            room = T + 1 - len(buf)
            text = self._doc()
            if self.rng.random() < self.fim_rate and room > 64:
                win, _ = self._window(text, self.rng.randint(min(300, 3 * room), 3 * room))
                parts = fim_split(win, self.rng)
                if parts:
                    t = fim_tokens(self.tok, *parts, spm=self.rng.random() < self.spm_rate)
                    if len(t) <= room:
                        buf += t
                        continue
            win, at_end = self._window(text, 4 * room + 16)
            t = self.tok.encode_ordinary(win)
            if at_end:
                t.append(self.eot)
            buf += t[:room]
        return buf

    def batch(self, B, T):
        return np.array([self.row(T) for _ in range(B)], dtype=np.int64)
