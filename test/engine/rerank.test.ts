// Reranker on hand-made candidate sets, one rule at a time, then all together.
import { describe, expect, it } from 'vitest';
import { rerank, normalizeWhitespace, scanBrackets, ruleBrackets, ruleRepetition, type Sample } from '../../engine/rerank';

const s = (text: string, lp = -0.5, finish: Sample['finish'] = 'eos', nTok = 3): Sample => ({
  text, ids: Array.from({ length: nTok }, (_, i) => i), logprobs: Array(nTok + 1).fill(lp), finish,
});
const ctx = (prefix = 'x = ', suffix = '', singleLine = false) => ({ prefix, suffix, singleLine });

describe('rerank: merging and agreement', () => {
  it('merges texts equal after whitespace normalisation and sums their counts', () => {
    const r = rerank([s('foo(a, b)'), s('foo(a,  b)  '), s('bar()'), s('foo(a, b)\n\n')], ctx());
    expect(r.map((c) => c.count).sort()).toEqual([1, 3]);
    const foo = r.find((c) => c.count === 3)!;
    expect(foo.samples).toEqual([0, 1, 3]);
    expect(r).toHaveLength(2);
    expect(r.reduce((a, c) => a + c.count, 0)).toBe(4);
  });

  it('keeps indentation differences apart (they change Python code)', () => {
    expect(normalizeWhitespace('  a\n    b')).not.toBe(normalizeWhitespace('  a\n  b'));
    expect(normalizeWhitespace('a  =\t1   \n')).toBe('a = 1');
  });

  it('agreement outranks a slightly more confident single sample', () => {
    const r = rerank([s('common()', -0.6), s('common()', -0.6), s('common()', -0.6), s('rare()', -0.4)], ctx());
    expect(r[0].text).toBe('common()');
    expect(r[0].reasons).toContain('3 samples agree');
    expect(r[0].score).toBeCloseTo(-0.6 + 0.5 * Math.log(3), 9);
  });

  it('a much more confident candidate still wins over weak agreement', () => {
    const r = rerank([s('a()', -2), s('a()', -2), s('b()', -0.1)], ctx());
    expect(r[0].text).toBe('b()');
  });

  it('shows the merged member with the best mean logprob', () => {
    const r = rerank([s('f( x )', -1), s('f( x ) ', -0.2)], ctx());
    expect(r).toHaveLength(1);
    expect(r[0].text).toBe('f( x ) ');
    expect(r[0].logprob).toBeCloseTo(-0.2);
  });

  it('length-normalises the logprob', () => {
    const long = { text: 'abcdef', ids: [1, 2, 3, 4, 5, 6], logprobs: [-0.1, -0.1, -0.1, -0.1, -0.1, -0.1, -0.1], finish: 'eos' as const };
    const short = { text: 'ab', ids: [1], logprobs: [-0.3, -0.3], finish: 'eos' as const };
    const r = rerank([short, long], ctx());
    expect(r[0].text).toBe('abcdef');
    expect(r[0].logprob).toBeCloseTo(-0.1);
  });
});

describe('rerank: filters and penalties', () => {
  it('filters empty and whitespace-only candidates and ranks them last', () => {
    const r = rerank([s('', -0.01), s('  \n\t', -0.01), s('value', -3)], ctx());
    expect(r[0].text).toBe('value');
    expect(r.slice(1).every((c) => c.filtered && c.reasons.includes('empty or whitespace only'))).toBe(true);
  });

  it('filters a candidate that repeats the text just after the cursor', () => {
    const r = rerank([s('    return a + b', -0.1), s('    return a - b', -1)], ctx('def f(a, b):\n', '    return a + b\n'));
    expect(r[0].text).toBe('    return a - b');
    expect(r[1].filtered).toBe(true);
    expect(r[1].reasons).toContain('repeats the text after the cursor');
  });

  it('penalises a candidate that ends with the next line of the suffix', () => {
    const r = rerank([s('x = 1\nprint(x)', -0.1), s('x = 1', -0.3)], ctx('', '\nprint(x)\n'));
    expect(r[0].text).toBe('x = 1');
    expect(r[1].reasons).toContain('ends with the line that follows the cursor');
    expect(r[1].filtered).toBe(false);
  });

  it('penalises a candidate that copies the line above the cursor', () => {
    const pre = 'for item in items:\n    total += item.price\n    ';
    const r = rerank([s('total += item.price', -0.1), s('count += 1', -0.4)], ctx(pre));
    expect(r[0].text).toBe('count += 1');
    expect(r[1].reasons).toContain('repeats the line before the cursor');
    // Mid-line (the cursor after some text) the rule does not apply, nor to short lines like "}".
    expect(rerank([s('total += item.price', -0.1)], ctx('x = 1\ntotal += item.price\ny = '))[0].reasons).not.toContain('repeats the line before the cursor');
    expect(rerank([s('}', -0.1)], ctx('  }\n'))[0].reasons).not.toContain('repeats the line before the cursor');
  });

  it('judges brackets relative to the surrounding code', () => {
    // prefix opens "(", suffix closes it: the candidate must not add or close brackets itself.
    const pre = scanBrackets('print(foo(');
    expect(ruleBrackets('a, b)', pre, ')\n')).toBeNull();
    expect(ruleBrackets('a, b))', pre, ')\n')?.reason).toBe('unbalanced brackets (+1)');
    expect(ruleBrackets('a, [b', pre, ')\n')?.reason).toBe('unbalanced brackets (+1)');
    // A prefix cut mid-block is unbalanced on its own: a candidate that adds nothing is fine.
    expect(ruleBrackets('x = 1', scanBrackets('def f():\n  if (a and {'), '')).toBeNull();
    // Closing what the prefix opened (no suffix) improves balance: no penalty.
    expect(ruleBrackets('1, 2]', scanBrackets('xs = ['), '')).toBeNull();
    const r = rerank([s('a, b))', -0.2), s('a, b)', -0.4)], ctx('print(foo(', ')\n', true));
    expect(r[0].text).toBe('a, b)');
    expect(r[1].reasons).toContain('unbalanced brackets (+1)');
  });

  it('penalises degenerate repetition of lines and n-grams, not ordinary code', () => {
    expect(ruleRepetition('x += 1\nx += 1\n')?.reason).toMatch(/repeated line/);
    expect(ruleRepetition('a = f()\nb = 2\na = f()\nc = 3\na = f()')?.reason).toMatch(/repeated line/);
    expect(ruleRepetition('foo foo foo foo foo foo')?.reason).toMatch(/degenerate repetition of "foo"/);
    expect(ruleRepetition('self.a.self.a.self.a.self.a.self.a.self.a')?.reason).toMatch(/degenerate/);
    expect(ruleRepetition('for i in range(10):\n    total += i\nreturn total')).toBeNull();
    expect(ruleRepetition('xs = [0, 0, 0]')).toBeNull();
    expect(ruleRepetition('}\n}\n}')).toBeNull(); // closing a nest of blocks is normal
    const r = rerank([s('a a a a a a a a', -0.05), s('a + b', -0.5)], ctx());
    expect(r[0].text).toBe('a + b');
  });

  it('penalises a line cut off by max tokens in single-line mode', () => {
    const r = rerank([s('result = compute(a, b, c, d', -0.1, 'length'), s('result = 0', -0.4, 'newline')], ctx('', '', true));
    expect(r[0].text).toBe('result = 0');
    expect(r[1].reasons).toContain('line cut off at max tokens');
  });

  it('drops the unfinished last line of a multi-line candidate cut by max tokens', () => {
    const r = rerank([s('a = 1\nb = 2\nc = com', -0.1, 'length')], ctx());
    expect(r[0].text).toBe('a = 1\nb = 2');
    expect(r[0].reasons).toContain('trailing partial line dropped');
    // ... and then merges with a sample that said the same and stopped.
    const m = rerank([s('a = 1\nb = 2\nc = com', -0.1, 'length'), s('a = 1\nb = 2', -0.2, 'eos')], ctx());
    expect(m).toHaveLength(1);
    expect(m[0].count).toBe(2);
  });

  it('returns every candidate with a score and reasons, best first', () => {
    const r = rerank([s(''), s('ok()'), s('ok()'), s('z z z z z z'), s('(((')], ctx());
    expect(r.map((c) => c.text)).toEqual(['ok()', 'z z z z z z', '(((', '']);
    for (let i = 1; i < r.length; i++) expect(r[i - 1].score).toBeGreaterThanOrEqual(r[i].score);
    for (const c of r) expect(c.reasons.length).toBeGreaterThan(0);
  });
});
