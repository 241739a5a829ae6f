#!/usr/bin/python3
"""Byte-level BPE for nib's own models.

The pre-tokenizer is Qwen2's regex and the byte<->unicode mapping is GPT-2's,
so nib's C tokenizer (tokenizer.ggml.pre = "qwen2") produces exactly the ids
this module produces. Merges are applied like llama.cpp does: repeatedly
merge the adjacent pair with the lowest rank, leftmost first.

Layout of the vocabulary: ids 0..255 are the 256 single bytes (in byte
order), then one id per merge in rank order, then the special tokens.

  python3 tokenizer.py train --vocab 8192 --out data/tokenizer.json
  python3 tokenizer.py encode --tok data/tokenizer.json --text "def f():"
"""
import argparse, collections, json, os, random, sys, time

try:
    import regex
except ImportError:  # pragma: no cover
    sys.exit("tokenizer.py needs the 'regex' module: apt-get install -y python3-regex")

QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
            "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>"]


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()
U2B = {v: k for k, v in B2U.items()}
PAT = regex.compile(QWEN2_PAT)


def pretokenize(text):
    return PAT.findall(text)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def train_bpe(word_counts, n_merges, log=True):
    """Learn n_merges merges from {bytes word: count}. Returns [(a, b)] as id pairs.

    Classic incremental algorithm: pair counts and the set of words holding
    each pair are updated only for words touched by a merge, so each merge
    costs time proportional to the words it changes.
    """
    words = [list(w) for w in word_counts]  # symbols are ids; 0..255 bytes
    counts = list(word_counts.values())
    pair_cnt = collections.Counter()
    where = collections.defaultdict(set)
    for wi, w in enumerate(words):
        c = counts[wi]
        for a, b in zip(w, w[1:]):
            pair_cnt[(a, b)] += c
            where[(a, b)].add(wi)
    merges = []
    # A lazy max-heap keyed on (-count, pair) would be faster; the dict scan
    # below is fine for ~8k merges over a few hundred thousand words.
    import heapq
    heap = [(-c, p) for p, c in pair_cnt.items()]
    heapq.heapify(heap)
    t0 = time.time()
    while len(merges) < n_merges and heap:
        negc, p = heapq.heappop(heap)
        if pair_cnt.get(p, 0) != -negc:
            if pair_cnt.get(p, 0) > 0:
                heapq.heappush(heap, (-pair_cnt[p], p))
            continue
        if -negc < 2:
            break
        new_id = 256 + len(merges)
        merges.append(p)
        a, b = p
        changed = collections.Counter()
        for wi in list(where[p]):
            w = words[wi]
            c = counts[wi]
            # Remove this word's old pairs, merge, add new pairs.
            for x, y in zip(w, w[1:]):
                changed[(x, y)] -= c
            i, out = 0, []
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            for x, y in zip(w, w[1:]):
                s = where.get((x, y))
                if s is not None:
                    s.discard(wi)
            words[wi] = out
            for x, y in zip(out, out[1:]):
                changed[(x, y)] += c
                where[(x, y)].add(wi)
        for q, d in changed.items():
            if d == 0:
                continue
            v = pair_cnt.get(q, 0) + d
            if v <= 0:
                pair_cnt.pop(q, None)
            else:
                pair_cnt[q] = v
                heapq.heappush(heap, (-v, q))
        pair_cnt.pop(p, None)
        where.pop(p, None)
        if log and len(merges) % 1000 == 0:
            print(f"  {len(merges)} merges, {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return merges


class Tokenizer:
    def __init__(self, merges, specials=SPECIALS):
        self.merges = [tuple(m) for m in merges]
        # id -> bytes
        self.id_bytes = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self.id_bytes.append(self.id_bytes[a] + self.id_bytes[b])
        self.rank = {m: i for i, m in enumerate(self.merges)}
        self.specials = list(specials)
        self.special_ids = {s: 256 + len(self.merges) + i for i, s in enumerate(self.specials)}
        self.n_vocab = 256 + len(self.merges) + len(self.specials)
        self.cache = {}
        self.special_pat = regex.compile("(" + "|".join(regex.escape(s) for s in self.specials) + ")")

    # Token strings as GGUF / HF store them (GPT-2 byte-mapped unicode).
    def token_strings(self):
        toks = ["".join(B2U[c] for c in bs) for bs in self.id_bytes]
        return toks + self.specials

    def merge_strings(self):
        ts = self.token_strings()
        return [f"{ts[a]} {ts[b]}" for a, b in self.merges]

    def id(self, s):
        return self.special_ids[s]

    def _bpe(self, word):
        ids = list(word)
        rank = self.rank
        while len(ids) > 1:
            best, bi = None, -1
            for i in range(len(ids) - 1):
                r = rank.get((ids[i], ids[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            # Merge every non-overlapping occurrence of the best pair left to
            # right; this equals llama.cpp's leftmost-lowest-rank queue order.
            a, b = self.merges[best]
            new_id = 256 + best
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        return ids

    def encode_ordinary(self, text):
        out = []
        cache = self.cache
        for w in PAT.findall(text):
            ids = cache.get(w)
            if ids is None:
                ids = self._bpe(w.encode("utf-8"))
                if len(cache) < 2_000_000:
                    cache[w] = ids
            out.extend(ids)
        return out

    def encode(self, text, allow_special=True):
        if not allow_special:
            return self.encode_ordinary(text)
        out = []
        for part in self.special_pat.split(text):
            if part in self.special_ids:
                out.append(self.special_ids[part])
            elif part:
                out.extend(self.encode_ordinary(part))
        return out

    def decode_bytes(self, ids):
        return b"".join(self.id_bytes[i] if i < len(self.id_bytes)
                        else self.specials[i - len(self.id_bytes)].encode() for i in ids)

    def decode(self, ids):
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"pre": "qwen2", "merges": self.merges, "specials": self.specials}, f)

    @classmethod
    def load(cls, path):
        with open(path) as f:
            d = json.load(f)
        return cls(d["merges"], d["specials"])


class VocabBPE:
    """BPE over an arbitrary GGUF gpt2-style vocabulary (token strings + merges).

    Used by tests to check this module's pre-tokenizer and merge order against
    llama.cpp's test vectors for the real Qwen2 vocabulary.
    """

    def __init__(self, tokens, merges):
        self.tok2id = {t: i for i, t in enumerate(tokens)}
        self.rank = {tuple(m.split(" ", 1)): i for i, m in enumerate(merges)}

    def _bpe(self, sym):
        while len(sym) > 1:
            best, bi = None, -1
            for i in range(len(sym) - 1):
                r = self.rank.get((sym[i], sym[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            a, b = sym[bi], sym[bi + 1]
            out, i = [], 0
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            sym = out
        return [self.tok2id[s] for s in sym]

    def encode(self, text):
        out = []
        for w in PAT.findall(text):
            out.extend(self._bpe([B2U[c] for c in w.encode("utf-8")]))
        return out


def sample_text(train_jsonl, mb, seed=0):
    """A language-stratified sample of about `mb` megabytes of training files."""
    by_lang = collections.defaultdict(list)
    with open(train_jsonl) as f:
        for line in f:
            r = json.loads(line)
            by_lang[r["lang"]].append(r["text"])
    rng = random.Random(seed)
    per = mb * 1e6 / len(by_lang)
    out = []
    for lang, texts in sorted(by_lang.items()):
        rng.shuffle(texts)
        n = 0
        for t in texts:
            if n > per:
                break
            out.append(t)
            n += len(t)
    return out


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "data", "train.jsonl"))
    t.add_argument("--vocab", type=int, default=8192)
    t.add_argument("--sample-mb", type=float, default=8)
    t.add_argument("--out", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--tok", required=True)
    e.add_argument("--text")
    e.add_argument("--file")
    args = ap.parse_args()
    if args.cmd == "train":
        t0 = time.time()
        texts = sample_text(args.data, args.sample_mb)
        wc = collections.Counter()
        for tx in texts:
            # Special-token text never becomes part of a learned merge.
            wc.update(w.encode("utf-8") for w in pretokenize(tx))
        print(f"{len(wc)} unique words from {sum(map(len, texts)) / 1e6:.1f} MB, "
              f"{time.time() - t0:.0f}s", file=sys.stderr)
        n_merges = args.vocab - 256 - len(SPECIALS)
        merges = train_bpe(wc, n_merges)
        tok = Tokenizer(merges)
        tok.save(args.out)
        print(f"vocab {tok.n_vocab}, {time.time() - t0:.0f}s", file=sys.stderr)
    else:
        tok = Tokenizer.load(args.tok)
        text = args.text if args.text is not None else open(args.file, encoding="utf-8").read()
        print(json.dumps(tok.encode(text)))


if __name__ == "__main__":
    main()
