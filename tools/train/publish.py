#!/usr/bin/env python3
"""Turns a training run's outputs (what train.py wrote to $OUT on the GPU machine) into the small committed
records next to the model (standard library only):
  models/forkcast-default.ref.json    reference prompts, HF token ids, PyTorch float32 logits of the Q8_0
                                      weights and greedy ids (read by test/model-default/*.test.ts)
  models/forkcast-default.train.json  configuration, hyperparameters, loss curve, throughput, held-out eval
  tools/train/manifest-gpu.tsv        the packages added on the GPU machine (license, files, bytes)

Usage: python3 tools/train/publish.py --run .train/run3
"""
import argparse, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--run', default='.train/run')
    args = ap.parse_args()
    ref = json.load(open(os.path.join(args.run, 'ref.json')))
    res = json.load(open(os.path.join(args.run, 'results.json')))

    out = {'source': 'tools/train/train.py reference_logits() on the GPU machine: float32 PyTorch forward of the exported '
                     'weights after a Q8_0 round trip (as stored in forkcast-default-q8_0.gguf); ids from the Hugging Face '
                     'tokenizers encoding of each text (FIM prompt: <fim_prefix> prefix <fim_suffix> suffix <fim_middle>)',
           'prompts': [{'text': p['text'], 'ids': p['ids'], 'last_logits': [round(v, 4) for v in p['last_logits_q8_0']],
                        'greedy': p['greedy_q8_0'], 'greedy_gaps': [round(g, 4) for g in p['greedy_gaps']]}
                       for p in ref['prompts']]}
    with open(os.path.join(REPO, 'models', 'forkcast-default.ref.json'), 'w') as f:
        json.dump(out, f, separators=(',', ':'))

    keep = ['config', 'hyper', 'params', 'flops_per_token', 'steps', 'tokens', 'train_seconds', 'tokens_per_s', 'mfu',
            'peak_flops', 'device', 'torch', 'specials', 'final_loss_avg_last10', 'heldout', 'train_docs', 'train_chars', 'curve']
    summary = {k: res[k] for k in keep if k in res}
    with open(os.path.join(REPO, 'models', 'forkcast-default.train.json'), 'w') as f:
        json.dump(summary, f, indent=1)

    with open(os.path.join(HERE, 'manifest-gpu.tsv'), 'w') as f:
        f.write('source\tpackage\tversion\tlicense\tsplit\tfiles\tbytes\n')
        for r in sorted(res.get('extra_manifest', []), key=lambda r: r['package'].lower()):
            f.write(f"{r['source']}\t{r['package']}\t{r['version']}\t{r['license']}\t{r['split']}\t{r['files']}\t{r['bytes']}\n")
    print('wrote models/forkcast-default.ref.json, models/forkcast-default.train.json, tools/train/manifest-gpu.tsv')


if __name__ == '__main__':
    main()
