#!/usr/bin/env python3
"""One-command training of Forkcast's default code model (runs on the GPU machine).

Steps, all in one process so they fit one device call:
  1. byte-level BPE tokenizer (HF `tokenizers`, GPT-2 pre-tokenizer regex) with StarCoder's special tokens
  2. tokenization + fill-in-the-middle transformation of the corpus (PSM format, half of the documents)
  3. training of the llama model in tools/train/model.py (bf16 autocast, fused AdamW, cosine schedule whose
     length is fixed after measuring the step time, so the run ends inside its time budget)
  4. evaluation on held-out packages: perplexity per language, greedy and n=16 sampled infilling
  5. outputs: bf16 weights (split in < 16 MiB parts), tokenizer.json, results.json (hyperparameters,
     loss curve, evals, weight index), ref.json (reference logits for the parity test)

Usage (device): python3 tools/train/train.py --data .train/corpus --eval .train/eval/infill.jsonl --out $OUT
Pipeline check: add --smoke --max-docs 4000 --tok-sample-mb 8 --budget 170 (full model, short run, few eval cases)
"""
import argparse, json, lzma, math, os, queue, random, sys, threading, time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, Model, gguf_names, q8_0_roundtrip  # noqa: E402

SPECIALS = ['<|endoftext|>', '<fim_prefix>', '<fim_middle>', '<fim_suffix>', '<fim_pad>']
EOT, PRE, MID, SUF, PAD = range(5)
T0 = time.time()


def amp(dev):
    """bf16 autocast on the GPU; plain float32 elsewhere."""
    import contextlib
    return torch.autocast('cuda', dtype=torch.bfloat16) if dev == 'cuda' else contextlib.nullcontext()


def log(*a):
    print(f'[{time.time() - T0:7.1f}s]', *a, flush=True)


# ------------------------------------------------------------------------------------------- data

def read_jsonl_xz(path):
    with lzma.open(path, 'rt', encoding='utf-8') as f:
        return [json.loads(l) for l in f]


def clean(docs):
    """Drops documents that spell a special token: Forkcast encodes such text as plain text, while HF
    `tokenizers` would match it as the special id, so training on them would teach a mismatch."""
    return [d for d in docs if not any(s in d['text'] for s in SPECIALS)]


def train_tokenizer(docs, vocab, seed, sample_bytes):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    rng = random.Random(seed)
    sample, n = [], 0
    for d in rng.sample(docs, len(docs)):
        if n >= sample_bytes:
            break
        sample.append(d['text'])
        n += len(d['text'])
    tok = Tokenizer(models.BPE())
    # ByteLevel with use_regex=True splits with GPT-2's pattern: GGUF tokenizer.ggml.pre = "gpt-2"
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(sample, trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return tok, n


def encode_many(tok, texts, chunk=4096):
    out = []
    for i in range(0, len(texts), chunk):
        out.extend(np.asarray(e.ids, dtype=np.uint16) for e in tok.encode_batch(texts[i:i + chunk]))
    return out


def line_starts(text):
    starts, i = [0], text.find('\n')
    while 0 <= i < len(text) - 1:
        starts.append(i + 1)
        i = text.find('\n', i + 1)
    return starts


def fim_split(text, rng):
    """(prefix, middle, suffix) of a segment, at character level. Three kinds of middle, so training
    covers what an editor asks for: a random span (Bavarian et al. 2022), the rest of one line, or a block
    of whole lines."""
    kind = rng.random()
    if kind < 0.4 or '\n' not in text:
        a, b = sorted(rng.randrange(len(text) + 1) for _ in range(2))
        return text[:a], text[a:b], text[b:]
    starts = line_starts(text)
    li = rng.randrange(len(starts))
    ls = starts[li]
    le = text.find('\n', ls)
    le = len(text) if le < 0 else le
    if kind < 0.7:  # from a point inside the line (often after its indentation) to the line's end
        indent = len(text[ls:le]) - len(text[ls:le].lstrip())
        a = ls + indent if rng.random() < 0.5 else rng.randrange(ls, le + 1)
        return text[:a], text[a:le], text[le:]
    nl = rng.randint(2, 8)
    lj = min(len(starts) - 1, li + nl - 1)
    be = text.find('\n', starts[lj])
    be = len(text) if be < 0 else be
    indent = len(text[ls:le]) - len(text[ls:le].lstrip())
    a = ls + indent
    return text[:a], text[a:be], text[be:]


def segments(text, rng, lo=256, hi=4096):
    """Cuts a document into line-aligned segments of random length (context-level FIM: each FIM example
    fits the model's window instead of spanning a whole long file)."""
    out, pos = [], 0
    while pos < len(text):
        end = min(len(text), pos + rng.randint(lo, hi))
        if end < len(text):
            nl = text.find('\n', end)
            end = len(text) if nl < 0 else nl + 1
        out.append(text[pos:end])
        pos = end
    return out


def build_epoch(tok, docs, epoch, seed, ctx, fim_rate, plain_cache, stop=None):
    """Token windows [N, ctx+1] (uint16) for one pass over the documents, shuffled. plain_cache holds
    each document's tokens (plain documents are encoded once; FIM ones are re-split every epoch)."""
    rng = random.Random(seed * 1000 + epoch)
    plain, fims = [], []
    for i, d in enumerate(docs):
        if stop is not None and stop.is_set():
            return None, 0
        if rng.random() < fim_rate:
            for seg in segments(d['text'], rng):
                fims.append(fim_split(seg, rng))
        else:
            plain.append(i)
    missing = [i for i in plain if i not in plain_cache]
    for i, e in zip(missing, encode_many(tok, [docs[i]['text'] for i in missing])):
        plain_cache[i] = e
    enc_plain = [plain_cache[i] for i in plain]
    flat = [s for t in fims for s in t]
    enc_fim = encode_many(tok, flat)
    pieces = []
    for e in enc_plain:
        pieces.append(e)
        pieces.append(np.array([EOT], np.uint16))
    for i in range(len(fims)):
        p, m, s = enc_fim[3 * i], enc_fim[3 * i + 1], enc_fim[3 * i + 2]
        pieces.append(np.concatenate([[PRE], p, [SUF], s, [MID], m, [EOT]]).astype(np.uint16))
    order = list(range(len(pieces)))
    # keep each plain document followed by its EOT: shuffle pairs for plain, singles for FIM
    units = [(2 * i, 2 * i + 2) for i in range(len(enc_plain))] + [(2 * len(enc_plain) + i, 2 * len(enc_plain) + i + 1)
                                                                   for i in range(len(fims))]
    rng.shuffle(units)
    stream = np.concatenate([pieces[j] for a, b in units for j in range(a, b)])
    n = (len(stream) - 1) // ctx
    idx = np.arange(n)[:, None] * ctx + np.arange(ctx + 1)[None, :]
    win = stream[idx]
    win = win[np.random.default_rng(seed * 1000 + epoch).permutation(n)]
    del order
    return win, len(stream)


class EpochFeeder:
    """Builds the next epoch's windows in a background thread (tokenizers releases the GIL)."""

    def __init__(self, tok, docs, seed, ctx, fim_rate):
        self.q = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self.cache = {}
        self.args = (tok, docs, seed, ctx, fim_rate)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        tok, docs, seed, ctx, fim_rate = self.args
        e = 0
        while not self.stop.is_set():
            win, n = build_epoch(tok, docs, e, seed, ctx, fim_rate, self.cache, self.stop)
            if win is None:
                return
            while not self.stop.is_set():
                try:
                    self.q.put((e, win, n), timeout=0.5)
                    break
                except queue.Full:
                    pass
            e += 1

    def batches(self, bs):
        while True:
            e, win, ntok = self.q.get()
            log(f'epoch {e}: {len(win)} windows, {ntok / 1e6:.1f}M tokens')
            for i in range(0, len(win) - bs + 1, bs):
                yield e, win[i:i + bs]


# ------------------------------------------------------------------------------------------- eval

@torch.no_grad()
def heldout_ppl(model, tok, docs, ctx, dev, max_tokens=3_000_000):
    """Per-language perplexity and bits per byte over plain held-out documents (EOT-separated, packed)."""
    model.eval()
    res = {}
    langs = sorted(set(d['lang'] for d in docs))
    for lang in langs:
        texts = [d['text'] for d in docs if d['lang'] == lang]
        enc = encode_many(tok, texts)
        stream, nbytes, ntok = [], 0, 0
        for t, e in zip(texts, enc):
            if ntok >= max_tokens // len(langs):
                break
            stream.append(e)
            stream.append(np.array([EOT], np.uint16))
            nbytes += len(t.encode('utf-8')) + 1
            ntok += len(e) + 1
        s = np.concatenate(stream).astype(np.int64)
        n = (len(s) - 1) // ctx
        if n == 0:
            continue
        # count the bytes of the tokens actually scored (whole windows only)
        frac = n * ctx / (len(s) - 1)
        x = torch.from_numpy(s[:n * ctx + 1])
        tot = 0.0
        for i in range(0, n, 32):
            j = min(n, i + 32)
            xb = torch.stack([x[k * ctx:(k + 1) * ctx] for k in range(i, j)]).to(dev)
            yb = torch.stack([x[k * ctx + 1:(k + 1) * ctx + 1] for k in range(i, j)]).to(dev)
            with amp(dev):
                logits = model(xb)
            tot += F.cross_entropy(logits.float().view(-1, logits.shape[-1]), yb.view(-1), reduction='sum').item()
        nt = n * ctx
        res[lang] = {'tokens': nt, 'ppl': math.exp(tot / nt), 'loss': tot / nt,
                     'bits_per_byte': tot / math.log(2) / (nbytes * frac)}
    model.train()
    return res


def fim_prompt(tok, prefix, suffix, max_prefix=640, max_suffix=256):
    p = tok.encode(prefix).ids[-max_prefix:] if prefix else []
    s = tok.encode(suffix).ids[:max_suffix] if suffix else []
    return [PRE] + p + [SUF] + s + [MID]


@torch.no_grad()
def generate(model, ids, n, max_new, temperature, dev, gen, stop_newline, tok, greedy_first=False):
    """Decodes n continuations of one prompt with a KV cache (row 0 greedy when greedy_first, the others
    sampled at `temperature`). Returns [(ids, sum_logprob)]."""
    caches = [dict() for _ in model.blocks]
    x = torch.tensor([ids], device=dev)
    with amp(dev):
        logits = model(x, caches, 0)[:, -1].float()
    for c in caches:
        c['k'] = c['k'].expand(n, -1, -1, -1).contiguous()
        c['v'] = c['v'].expand(n, -1, -1, -1).contiguous()
    logits = logits.expand(n, -1)
    out = [[] for _ in range(n)]
    lp = [0.0] * n
    done = [False] * n
    pos = len(ids)
    for _ in range(max_new):
        logp = torch.log_softmax(logits, -1)
        if temperature == 0:
            nxt = logp.argmax(-1)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen)[:, 0]
            if greedy_first:
                nxt[0] = logits[0].argmax()
        chosen = logp.gather(1, nxt[:, None])[:, 0].tolist()
        nl = nxt.tolist()
        for i in range(n):
            if done[i]:
                continue
            if nl[i] == EOT:
                done[i] = True
                continue
            out[i].append(nl[i])
            lp[i] += chosen[i]
            if stop_newline and '\n' in tok.decode(out[i]):
                done[i] = True
        if all(done) or pos + 1 >= model.cfg.ctx:
            break
        with amp(dev):
            logits = model(nxt[:, None], caches, pos)[:, -1].float()
        pos += 1
    return list(zip(out, lp))


def norm_lines(s):
    return '\n'.join(l.rstrip() for l in s.strip('\n').split('\n')).rstrip()


@torch.no_grad()
def infill_eval(model, tok, cases, dev, seed, n_samples, deadline, temperature=0.8):
    """Exact match of the masked line/block: greedy, and best-of-n by mean log-probability (a PyTorch
    stand-in for Forkcast's reranker; Forkcast's own numbers are computed with its CLI on CPU)."""
    model.eval()
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    rows = []
    for c in cases:
        if time.time() > deadline:
            break
        single = c['kind'] == 'single'
        ids = fim_prompt(tok, c['prefix'], c['suffix'])
        max_new = 40 if single else 128
        want = norm_lines(c['middle'])

        def text_of(o):
            t = tok.decode(o)
            return norm_lines(t.split('\n')[0] if single else t)
        if n_samples:  # one batch: row 0 greedy, rows 1..n sampled
            res = generate(model, ids, n_samples + 1, max_new, temperature, dev, gen, single, tok, greedy_first=True)
        else:
            res = generate(model, ids, 1, max_new, 0, dev, gen, single, tok)
        g, ss = res[0], res[1:]
        row = {'kind': c['kind'], 'lang': c['lang'], 'greedy': text_of(g[0]) == want, 'greedy_text': tok.decode(g[0])}
        if n_samples:
            best = max(ss, key=lambda s: s[1] / max(1, len(s[0])))
            row['best_of_n'] = text_of(best[0]) == want
            row['any_of_n'] = any(text_of(s[0]) == want for s in ss)
        rows.append(row)
    model.train()
    summ = {}
    for kind in ('single', 'multi'):
        r = [x for x in rows if x['kind'] == kind]
        if not r:
            continue
        summ[kind] = {'cases': len(r), 'greedy_em': sum(x['greedy'] for x in r) / len(r)}
        if n_samples:
            summ[kind]['best_of_n_em'] = sum(x['best_of_n'] for x in r) / len(r)
            summ[kind]['any_of_n_em'] = sum(x['any_of_n'] for x in r) / len(r)
        summ[kind]['by_lang'] = {l: sum(x['greedy'] for x in r if x['lang'] == l) / max(1, sum(1 for x in r if x['lang'] == l))
                                 for l in sorted(set(x['lang'] for x in r))}
    return summ, rows


# ------------------------------------------------------------------------------------------- outputs

def save_weights(model, out, part_bytes):
    """All tensors as bf16, concatenated in GGUF order and split into parts (device returns files < 16 MiB)."""
    sd = model.state_dict()
    index, blobs, off = [], [], 0
    for key, name in gguf_names(model.cfg):
        t = sd[key].detach().to(torch.bfloat16).contiguous().cpu()
        b = t.view(torch.int16).numpy().tobytes()
        index.append({'name': name, 'shape': list(t.shape), 'offset': off, 'nbytes': len(b)})
        blobs.append(b)
        off += len(b)
    blob = b''.join(blobs)
    parts = []
    for i in range(0, len(blob), part_bytes):
        fn = f'weights.bf16.{len(parts):02d}'
        with open(os.path.join(out, fn), 'wb') as f:
            f.write(blob[i:i + part_bytes])
        parts.append(fn)
    return {'dtype': 'bf16', 'tensors': index, 'parts': parts, 'total_bytes': len(blob)}


REF_PROMPTS = [
    'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n',
    'import os\nimport sys\n\n\ndef main():\n    for name in sorted(os.listdir(sys.argv[1])):\n        ',
    'function debounce(fn, ms) {\n  let timer;\n  return (...args) => {\n',
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tfor i := 0; i < 10; i++ {\n\t\t',
    'fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!("{}", ',
]
REF_FIM = ('def add(a, b):\n    ', '\n\n\nprint(add(1, 2))\n')


@torch.no_grad()
def reference_logits(model, tok, dev):
    """Float32 logits of the exported weights (bf16 as stored, and after a Q8_0 round trip as in the GGUF)
    on fixed prompts: the Forkcast parity test compares its own logits against these."""
    import copy
    torch.backends.cuda.matmul.allow_tf32 = False  # a true float32 reference
    torch.backends.cudnn.allow_tf32 = False
    out = {'prompts': []}
    variants = {}
    for name in ('bf16', 'q8_0'):
        m = copy.deepcopy(model).float().eval()
        for key, gname in gguf_names(model.cfg):
            p = m.state_dict()[key]
            w = p.to(torch.bfloat16).float()
            if name == 'q8_0' and p.dim() == 2:
                w = q8_0_roundtrip(w)
            p.copy_(w)
        variants[name] = m
    prompts = [(t, tok.encode(t).ids) for t in REF_PROMPTS] + [('FIM:' + json.dumps(REF_FIM), fim_prompt(tok, *REF_FIM))]
    for text, ids in prompts:
        rec = {'text': text, 'ids': ids}
        for name, m in variants.items():
            with amp('cpu'):
                lg = m(torch.tensor([ids], device=dev))[0].float()
            rec[f'last_logits_{name}'] = [round(v, 5) for v in lg[-1].tolist()]
            rec[f'first8_logits_{name}'] = [[round(v, 5) for v in r[:8].tolist()] for r in lg]
        # greedy continuation (16 tokens) with the Q8_0 weights, with margins
        caches = [dict() for _ in variants['q8_0'].blocks]
        lg = variants['q8_0'](torch.tensor([ids], device=dev), caches, 0)[0, -1]
        greedy, gaps, pos = [], [], len(ids)
        for _ in range(16):
            top = torch.topk(lg, 2)
            greedy.append(int(top.indices[0]))
            gaps.append(float(top.values[0] - top.values[1]))
            lg = variants['q8_0'](top.indices[:1].view(1, 1), caches, pos)[0, -1]
            pos += 1
        rec['greedy_q8_0'] = greedy
        rec['greedy_gaps'] = gaps
        out['prompts'].append(rec)
    return out


# ------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='.train/corpus')
    ap.add_argument('--eval', default='.train/eval/infill.jsonl')
    ap.add_argument('--out', default=os.environ.get('OUT', '/tmp/train-out'))
    ap.add_argument('--seed', type=int, default=1234)
    ap.add_argument('--budget', type=float, default=560, help='seconds for the whole script')
    ap.add_argument('--eval-reserve', type=float, default=110, help='seconds kept for eval + outputs')
    ap.add_argument('--vocab', type=int, default=16384)
    ap.add_argument('--tok-sample-mb', type=float, default=80)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--min-lr-frac', type=float, default=0.1)
    ap.add_argument('--warmup', type=int, default=150)
    ap.add_argument('--wd', type=float, default=0.1)
    ap.add_argument('--fim-rate', type=float, default=0.5)
    ap.add_argument('--compile', type=int, default=1)
    ap.add_argument('--n-samples', type=int, default=16)
    ap.add_argument('--smoke', action='store_true', help='few eval cases (with --budget/--max-docs: a pipeline check)')
    ap.add_argument('--tiny', action='store_true', help='tiny model (CPU checks)')
    ap.add_argument('--max-docs', type=int, default=0)
    ap.add_argument('--extra-site-mb', type=float, default=0, help='add up to this much permissive Python from site-packages here')
    ap.add_argument('--no-infill', action='store_true', help='skip the infilling eval (done on CPU with Forkcast instead)')
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    deadline = T0 + args.budget
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    log('torch', torch.__version__, dev, torch.cuda.get_device_name() if dev == 'cuda' else '')
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    train_docs = clean(read_jsonl_xz(os.path.join(args.data, 'train.jsonl.xz')))
    held_docs = clean(read_jsonl_xz(os.path.join(args.data, 'heldout.jsonl.xz')))
    extra_manifest = []
    if args.extra_site_mb > 0:  # more permissive Python from this machine's own environment
        import site as _site
        import corpus
        sp = next((p for p in _site.getsitepackages() if os.path.isdir(p)), None)
        held_pkgs = {d['package'] for d in held_docs if d['source'] == 'pypi'}
        if sp:
            extra, extra_manifest = corpus.extra_site_docs(sp, [d['text'] for d in train_docs], held_pkgs, max_bytes=args.extra_site_mb * 1e6)
            extra = clean(extra)
            log(f'extra: {len(extra)} files, {sum(len(d["text"]) for d in extra) / 1e6:.1f}M chars from {sp}')
            train_docs += extra
    if args.max_docs:
        train_docs, held_docs = train_docs[:args.max_docs], held_docs[:args.max_docs // 10 + 10]
    log(f'corpus: {len(train_docs)} train docs ({sum(len(d["text"]) for d in train_docs) / 1e6:.1f}M chars), {len(held_docs)} held-out')

    tok, tok_bytes = train_tokenizer(train_docs, args.vocab, args.seed, int(args.tok_sample_mb * 1e6))
    tok.save(os.path.join(args.out, 'tokenizer.json'))
    sample = held_docs[0]['text'][:2000]
    assert tok.decode(tok.encode(sample).ids) == sample, 'tokenizer round trip'
    log(f'tokenizer: vocab {tok.get_vocab_size()} trained on {tok_bytes / 1e6:.1f}MB')

    cfg = Config(vocab=args.vocab)
    if args.tiny:
        cfg = Config(vocab=args.vocab, dim=128, n_layer=2, n_head=4, n_kv_head=2, ff=352, ctx=256)
    model = Model(cfg).to(dev)
    n_params = model.n_params()
    fpt = model.flops_per_token(cfg.ctx)
    log(f'model: {n_params / 1e6:.2f}M params, {fpt / 1e6:.1f} MFLOP/token (train)')
    fused = dev == 'cuda'
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': args.wd}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, **({'fused': True} if fused else {}))

    def loss_fn(m, xb, yb):
        with amp(dev):
            logits = m(xb)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), yb.reshape(-1))

    step_model = model
    if args.compile and dev == 'cuda':
        try:
            step_model = torch.compile(model)
        except Exception as e:  # keep training eager rather than lose the run
            log('torch.compile unavailable:', e)

    feeder = EpochFeeder(tok, train_docs, args.seed, cfg.ctx, args.fim_rate)
    batches = feeder.batches(args.batch)
    if step_model is not model:  # compile on random tokens while the first epoch is being tokenized
        tc = time.time()
        try:
            xb = torch.randint(0, cfg.vocab, (args.batch, cfg.ctx + 1), device=dev)
            loss_fn(step_model, xb[:, :-1], xb[:, 1:]).backward()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
            log(f'compiled in {time.time() - tc:.1f}s')
        except Exception as e:
            log('torch.compile failed, training eager:', repr(e)[:300])
            step_model = model
            opt.zero_grad(set_to_none=True)
    peak = 989e12 if dev == 'cuda' and 'H100' in torch.cuda.get_device_name() else (
        989e12 if dev == 'cuda' else 1e12)  # dense bf16 peak of H100/H200 SXM (vendor datasheet)
    curve, total_steps, step, tokens = [], None, 0, 0
    t_start = None
    train_end = deadline - args.eval_reserve
    probe_steps = 30
    epoch = 0
    while True:
        if total_steps is None:
            lr = args.lr * min(1.0, (step + 1) / args.warmup)
        else:
            lr_min = args.lr * args.min_lr_frac
            if step < args.warmup:
                lr = args.lr * (step + 1) / args.warmup
            else:
                p = min(1.0, (step - args.warmup) / max(1, total_steps - args.warmup))
                lr = lr_min + 0.5 * (args.lr - lr_min) * (1 + math.cos(math.pi * p))
        for g in opt.param_groups:
            g['lr'] = lr
        epoch, win = next(batches)
        xy = torch.from_numpy(win.astype(np.int64)).to(dev, non_blocking=True)
        try:
            loss = loss_fn(step_model, xy[:, :-1], xy[:, 1:])
        except Exception as e:
            if step_model is model:
                raise
            log('compiled step failed, continuing eager:', repr(e)[:300])
            step_model = model
            loss = loss_fn(step_model, xy[:, :-1], xy[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += win.shape[0] * cfg.ctx
        if step == 3:  # compile + first steps done: time from here on
            if dev == 'cuda':
                torch.cuda.synchronize()
            t_start, tok_start = time.time(), tokens
        if step in (3 + probe_steps, 300, 1000, 2000) and (total_steps is None or step < total_steps - 200):
            # the schedule's length is set from the measured step time, and re-set a few times early on
            # (the first steps run while the data thread still tokenizes, so they are slower)
            if dev == 'cuda':
                torch.cuda.synchronize()
            dt = (time.time() - t_start) / (step - 3)
            total_steps = step + int((train_end - time.time()) / dt * 0.98)
            log(f'step time {dt * 1e3:.1f} ms -> {total_steps} steps in the remaining budget')
        if step % 25 == 0 or step == total_steps:
            lv = loss.item()
            el = time.time() - t_start if t_start else float('nan')
            tps = (tokens - tok_start) / el if t_start and el > 0 else float('nan')
            curve.append({'step': step, 'tokens': tokens, 'loss': round(lv, 4), 'lr': lr, 'gnorm': round(float(gnorm), 3),
                          'epoch': epoch, 'time': round(time.time() - T0, 1)})
            if step % 100 == 0 or step == total_steps:
                log(f'step {step}/{total_steps} loss {lv:.4f} lr {lr:.2e} gnorm {float(gnorm):.2f} epoch {epoch} '
                    f'{tps / 1e6:.3f}M tok/s MFU {tps * fpt / peak * 100:.1f}%')
        if total_steps is not None and (step >= total_steps or time.time() > train_end + 20):
            break
    if dev == 'cuda':
        torch.cuda.synchronize()
    feeder.stop.set()  # frees the GIL for evaluation
    train_time = time.time() - t_start
    tps = (tokens - tok_start) / train_time
    log(f'trained {step} steps, {tokens / 1e6:.1f}M tokens, {tps / 1e6:.3f}M tok/s, MFU {tps * fpt / peak * 100:.1f}%')

    results = {'config': cfg.dict(), 'hyper': vars(args), 'params': n_params, 'flops_per_token': fpt, 'steps': step,
               'tokens': tokens, 'train_seconds': train_time, 'tokens_per_s': tps, 'mfu': tps * fpt / peak,
               'peak_flops': peak, 'device': torch.cuda.get_device_name() if dev == 'cuda' else 'cpu',
               'torch': torch.__version__, 'curve': curve, 'specials': SPECIALS, 'epochs_seen': epoch + (0 if step else 0),
               'final_loss_avg_last10': sum(c['loss'] for c in curve[-10:]) / max(1, len(curve[-10:])),
               'extra_manifest': extra_manifest, 'train_docs': len(train_docs),
               'train_chars': sum(len(d['text']) for d in train_docs)}
    results['weights'] = save_weights(model, args.out, 15 * 1024 * 1024)

    def dump():
        json.dump(results, open(os.path.join(args.out, 'results.json'), 'w'))
    dump()
    log('weights saved')
    try:
        json.dump(reference_logits(model, tok, dev), open(os.path.join(args.out, 'ref.json'), 'w'))
        log('reference logits saved')
    except Exception as e:
        log('reference logits failed:', repr(e))
    try:
        results['heldout'] = heldout_ppl(model, tok, held_docs, cfg.ctx, dev)
        log('held-out:', json.dumps(results['heldout']))
        dump()
    except Exception as e:
        log('held-out eval failed:', repr(e))
    try:
        if os.path.exists(args.eval) and not args.no_infill:
            cases = [json.loads(l) for l in open(args.eval)]
            random.Random(args.seed).shuffle(cases)  # a deadline cut then still leaves a balanced sample
            if args.smoke:
                cases = cases[:6] + [c for c in cases if c['kind'] == 'multi'][:3]
            summ, rows = infill_eval(model, tok, cases, dev, args.seed, args.n_samples, T0 + args.budget - 8)
            results['infill'] = summ
            results['infill_rows'] = rows
            log('infill:', json.dumps(summ))
            dump()
    except Exception as e:
        log('infill eval failed:', repr(e))
    log('done')


if __name__ == '__main__':
    main()
