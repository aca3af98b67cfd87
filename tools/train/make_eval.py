#!/usr/bin/env python3
"""Held-out infilling cases for the model card (standard library only).

From files of the held-out packages (never trained on, near-duplicates of training files removed), picks
  - single-line cases: one line's code after its indentation is masked (the cursor sits after the
    indentation, as in an editor); the answer is the rest of that line,
  - multi-line cases: a block of 2-6 consecutive non-blank lines is masked the same way.
Balanced across languages; one case per file at most per kind; fixed seed.

Usage: python3 tools/train/make_eval.py --corpus .train/corpus --out .train/eval/infill.jsonl
"""
import argparse, json, lzma, os, random, re

COMMENT = re.compile(r'^(#|//|/\*|\*|"""|\'\'\'|--)')


def good_line(s):
    t = s.strip()
    return 10 <= len(t) <= 100 and not COMMENT.match(t) and sum(c.isalnum() for c in t) >= 6


def cases_for(doc, rng, kind):
    text = doc['text']
    lines = text.split('\n')
    offs, o = [], 0
    for l in lines:
        offs.append(o)
        o += len(l) + 1
    # keep some context on both sides
    cand = [i for i in range(3, len(lines) - 3) if good_line(lines[i])]
    if kind == 'multi':
        cand = [i for i in cand if all(lines[j].strip() for j in range(i, min(len(lines), i + 2)))]
    if not cand:
        return None
    i = rng.choice(cand)
    indent = len(lines[i]) - len(lines[i].lstrip())
    a = offs[i] + indent
    if kind == 'single':
        j = i
    else:
        n = rng.randint(2, 6)
        j = i
        while j + 1 < len(lines) - 1 and j - i + 1 < n and lines[j + 1].strip():
            j += 1
        if j == i:
            return None
    b = offs[j] + len(lines[j])
    middle = text[a:b]
    if kind == 'multi' and len(middle) > 400:
        return None
    return {'kind': kind, 'lang': doc['lang'], 'package': doc['package'], 'path': doc['path'], 'line': i + 1,
            'prefix': text[max(0, a - 4000):a], 'suffix': text[b:b + 2000], 'middle': middle}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--corpus', default='.train/corpus')
    ap.add_argument('--out', default='.train/eval/infill.jsonl')
    ap.add_argument('--single', type=int, default=200)
    ap.add_argument('--multi', type=int, default=50)
    ap.add_argument('--seed', type=int, default=7)
    args = ap.parse_args()
    with lzma.open(os.path.join(args.corpus, 'heldout.jsonl.xz'), 'rt', encoding='utf-8') as f:
        docs = [json.loads(l) for l in f]
    docs.sort(key=lambda d: d['path'])
    rng = random.Random(args.seed)
    langs = sorted(set(d['lang'] for d in docs))
    out = []
    for kind, total in (('single', args.single), ('multi', args.multi)):
        per = total // len(langs)
        for k, lang in enumerate(langs):
            want = per + (1 if k < total - per * len(langs) else 0)
            pool = [d for d in docs if d['lang'] == lang]
            rng.shuffle(pool)
            got = 0
            for d in pool * 3:  # small languages may need several cases per file
                if got >= want:
                    break
                c = cases_for(d, rng, kind)
                if c and not any(x['path'] == c['path'] and x['line'] == c['line'] for x in out):
                    out.append(c)
                    got += 1
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        for c in out:
            f.write(json.dumps(c) + '\n')
    print(f'{len(out)} cases ->', args.out, {l: sum(1 for c in out if c['lang'] == l) for l in langs})


if __name__ == '__main__':
    main()
