#!/usr/bin/env python3
"""Held-out infilling evaluation of a GGUF through Forkcast's own CLI (engine, prompt builder, sampler,
reranker), on the cases of make_eval.py. For each case: greedy (n=1, temperature 0) and Forkcast's
reranked top-1 of n=16 samples (temperature 0.8), exact match of the masked line / block after
stripping trailing whitespace of each line.

Usage: python3 tools/train/eval_forkcast.py --model models/forkcast-default-q8_0.gguf \
           --cases .train/eval/infill.jsonl --out .train/eval/forkcast.json [--limit N] [--context-tokens 768]
Needs `npm run build` (dist/cli.js and the native addon).
"""
import argparse, difflib, json, os, subprocess, sys, tempfile, time


def norm_lines(s):
    return '\n'.join(l.rstrip() for l in s.strip('\n').split('\n')).rstrip()


CLI = 'dist/cli.js'


def run_complete(model, prefix, suffix, n, temperature, single, max_tokens, ctx_tokens, seed, threads, tries=3):
    with tempfile.TemporaryDirectory() as d:
        pf, sf = os.path.join(d, 'p'), os.path.join(d, 's')
        open(pf, 'w').write(prefix)
        open(sf, 'w').write(suffix)
        cmd = ['node', CLI, 'complete', '--model', model, '--prefix-file', pf, '--suffix-file', sf, '--n', str(n),
               '--temperature', str(temperature), '--max-tokens', str(max_tokens), '--context-tokens', str(ctx_tokens),
               '--seed', str(seed), '--threads', str(threads), '--json']
        if single:
            cmd.append('--single-line')
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if out.returncode and tries > 1:  # e.g. dist/ being rebuilt under us: try again
            time.sleep(5)
            return run_complete(model, prefix, suffix, n, temperature, single, max_tokens, ctx_tokens, seed, threads, tries - 1)
        if out.returncode:
            raise RuntimeError(f'exit {out.returncode}: {out.stderr.strip()} {out.stdout[:300]}')
        return json.loads(out.stdout)


def main():
    global CLI
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='models/forkcast-default-q8_0.gguf')
    ap.add_argument('--cases', default='.train/eval/infill.jsonl')
    ap.add_argument('--out', default='.train/eval/forkcast.json')
    ap.add_argument('--limit', type=int, default=0)
    ap.add_argument('--n', type=int, default=16)
    ap.add_argument('--context-tokens', type=int, default=768)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--no-sampling', action='store_true')
    ap.add_argument('--cli', default='dist/cli.js', help='the bundled CLI (a copy of dist/ keeps a rebuild from interfering)')
    args = ap.parse_args()
    CLI = args.cli
    cases = [json.loads(l) for l in open(args.cases)]
    if args.limit:  # a balanced subset: every k-th case of each kind
        single = [c for c in cases if c['kind'] == 'single']
        multi = [c for c in cases if c['kind'] == 'multi']
        ks, km = max(1, len(single) * 5 // (args.limit * 4)), max(1, len(multi) * 5 // args.limit)
        cases = single[::ks][:args.limit * 4 // 5] + multi[::km][:args.limit - args.limit * 4 // 5]
    rows, t0 = [], time.time()
    for i, c in enumerate(cases):
        single = c['kind'] == 'single'
        mt = 48 if single else 128
        want = norm_lines(c['middle'])

        def text_of(t):
            return norm_lines(t.split('\n')[0] if single else t)
        g = run_complete(args.model, c['prefix'], c['suffix'], 1, 0, single, mt, args.context_tokens, args.seed, args.threads)
        row = {'kind': c['kind'], 'lang': c['lang'], 'path': c['path'], 'line': c['line'], 'want': c['middle'],
               'greedy_text': g['text'], 'greedy': text_of(g['text']) == want,
               # a softer measure than exact match: character edit similarity (difflib ratio, 0..1)
               'greedy_sim': difflib.SequenceMatcher(None, text_of(g['text']), want).ratio()}
        if not args.no_sampling:
            s = run_complete(args.model, c['prefix'], c['suffix'], args.n, 0.8, single, mt, args.context_tokens, args.seed, args.threads)
            row['top1_text'] = s['text']
            row['top1'] = text_of(s['text']) == want
            row['top1_sim'] = difflib.SequenceMatcher(None, text_of(s['text']), want).ratio()
            row['any'] = any(text_of(x['text']) == want for x in s['candidates'])
            row['ms'] = s['timings']['total_ms']
        rows.append(row)
        if (i + 1) % 10 == 0:
            print(f'{i + 1}/{len(cases)} cases, {time.time() - t0:.0f}s, greedy EM so far '
                  f'{sum(r["greedy"] for r in rows) / len(rows):.3f}', file=sys.stderr, flush=True)
    summ = {}
    for kind in ('single', 'multi'):
        r = [x for x in rows if x['kind'] == kind]
        if not r:
            continue
        summ[kind] = {'cases': len(r), 'greedy_em': sum(x['greedy'] for x in r) / len(r),
                      'greedy_edit_sim': sum(x['greedy_sim'] for x in r) / len(r)}
        if not args.no_sampling:
            summ[kind]['top1_of_n_em'] = sum(x['top1'] for x in r) / len(r)
            summ[kind]['any_of_n_em'] = sum(x['any'] for x in r) / len(r)
            summ[kind]['top1_edit_sim'] = sum(x['top1_sim'] for x in r) / len(r)
        summ[kind]['greedy_by_lang'] = {l: round(sum(x['greedy'] for x in r if x['lang'] == l) / sum(1 for x in r if x['lang'] == l), 3)
                                        for l in sorted(set(x['lang'] for x in r))}
    res = {'model': args.model, 'n': args.n, 'context_tokens': args.context_tokens, 'summary': summ, 'rows': rows}
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    json.dump(res, open(args.out, 'w'), indent=1)
    print(json.dumps(summ, indent=1))


if __name__ == '__main__':
    main()
