#!/usr/bin/env python3
"""The models shipped in models/ load in nib and complete FIM prompts with the
recorded, deterministic greedy answers (tests/training/shipped_expect.json).

  shipped.py PATH_TO_NIB            check
  shipped.py PATH_TO_NIB --record   rewrite the expectations (after retraining;
                                    read the answers before committing them)

Standard library only: no torch needed. The target is also run without -m,
so nib's default-model lookup (models/ beside the build folder) is covered.
"""
import json, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPECT = os.path.join(ROOT, "tests", "training", "shipped_expect.json")

# Prompts whose answer a reader can judge: the middle is fixed by the code
# around it.
PROMPTS = [
    ("models/nib-coder.gguf", "py-range",
     "<|fim_prefix|>def main():\n    for i in range(10):\n        print(<|fim_suffix|>)\n\n\n"
     "if __name__ == \"__main__\":\n    main()\n<|fim_middle|>"),
    # (c-free replaced c-include, whose second token was a near-tie that
    # AVX-512 and AVX2 decided differently once attention changed order.)
    ("models/nib-coder.gguf", "c-free",
     "<|fim_prefix|>#include <stdlib.h>\n\nint main(void) {\n    char *p = malloc(16);\n"
     "    <|fim_suffix|>\n    return 0;\n}\n<|fim_middle|>"),
    ("models/nib-coder.gguf", "go-err",
     "<|fim_prefix|>func readAll(path string) ([]byte, error) {\n\tdata, err := os.ReadFile(path)\n"
     "\tif err != nil {\n\t\treturn nil, <|fim_suffix|>\n\t}\n\treturn data, nil\n}\n<|fim_middle|>"),
    ("models/nib-coder.gguf", "java-import",
     "<|fim_prefix|>import java.util.List;\n<|fim_suffix|>import java.util.Map;\n<|fim_middle|>"),
    ("models/nib-coder-draft.gguf", "java-import",
     "<|fim_prefix|>import java.util.List;\n<|fim_suffix|>import java.util.Map;\n<|fim_middle|>"),
    ("models/nib-coder-draft.gguf", "py-range",
     "<|fim_prefix|>def main():\n    for i in range(10):\n        print(<|fim_suffix|>)\n\n\n"
     "if __name__ == \"__main__\":\n    main()\n<|fim_middle|>"),
]
N = 16
# Beyond the recorded text, answers that must look right: the first non-empty
# line of the target's completion matches this regex. (The shipped models are
# too small to fill in most middles well -- see training/README.md -- but a
# missing import line between two imports the target gets. The draft, whose
# proposals the target verifies, is not held to it: the current one starts
# this middle with " * <pre>".)
PLAUSIBLE = {"nib-coder.gguf:java-import": r"^import java\.util\.[\w.]+;$"}


def nib(*args, env=None):
    r = subprocess.run([sys.argv[1], *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print("FAILED: nib", " ".join(args), "\n", r.stderr[-2000:])
        sys.exit(1)
    return r.stdout


def main():
    record = "--record" in sys.argv
    for m in {p[0] for p in PROMPTS}:
        if not os.path.exists(os.path.join(ROOT, m)):
            print(f"FAILED: {m} is missing")
            sys.exit(1)
    expect = {} if record else json.load(open(EXPECT))
    tmp = tempfile.mkdtemp(prefix="nib-shipped-")
    passed = failed = 0
    for model, name, prompt in PROMPTS:
        key = f"{os.path.basename(model)}:{name}"
        pf = os.path.join(tmp, name + ".txt")
        with open(pf, "w") as f:
            f.write(prompt)
        res = json.loads(nib("eval", "-m", os.path.join(ROOT, model), "-f", pf, "-n", str(N),
                             "-t", "1"))
        gen = nib("generate", "-m", os.path.join(ROOT, model), "-p", prompt, "-n", str(N),
                  "--temp", "0", "-t", "1")
        text = gen[len(prompt):] if gen.startswith(prompt) else gen
        if record:
            expect[key] = {"greedy": res["greedy"], "text": text}
            print(f"{key}: {text!r}")
            continue
        want = expect[key]
        ok = res["greedy"] == want["greedy"] and text == want["text"]
        if key in PLAUSIBLE:
            first = next((l for l in text.split("\n") if l.strip()), "")
            if not re.match(PLAUSIBLE[key], first.strip()):
                print(f"implausible first line {first!r} for {key}")
                ok = False
        print(f"{'ok' if ok else 'FAIL'} {key}: {text!r}"
              + ("" if ok else f"\n  want {want['text']!r} {want['greedy']}\n  got  {res['greedy']}"))
        passed += ok
        failed += not ok
    if record:
        with open(EXPECT, "w") as f:
            json.dump(expect, f, indent=1)
        return
    # Default model: no -m, no $NIB_MODEL -> models/nib-coder.gguf beside the build.
    env = {k: v for k, v in os.environ.items() if k not in ("NIB_MODEL", "NIB_DRAFT_MODEL")}
    pf = os.path.join(tmp, "py-range.txt")
    res = json.loads(nib("eval", "-f", pf, "-n", str(N), "-t", "1", env=env))
    ok = res["greedy"] == expect["nib-coder.gguf:py-range"]["greedy"]
    print(f"{'ok' if ok else 'FAIL'} default model lookup")
    passed += ok
    failed += not ok
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
