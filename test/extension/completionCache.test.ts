// The typing-through cache and the LRU of recent results (extension/completionCache.ts).
import { describe, expect, it } from 'vitest';
import { CompletionCache } from '../../extension/completionCache';

const cands = (...texts: string[]) => texts.map((text, i) => ({ text, score: 1 - i / 10, count: 1 }));

describe('completion cache', () => {
  it('returns the same candidates for the same prompt windows', () => {
    const c = new CompletionCache();
    c.put('def f():\n    return ', '\n', cands('x + 1', 'None'));
    expect(c.get('def f():\n    return ', '\n')).toEqual({ candidates: cands('x + 1', 'None'), typed: 0 });
    expect(c.get('def f():\n    return', '\n')).toBeUndefined(); // one char less: a different prompt
    expect(c.get('def f():\n    return ', '\nx')).toBeUndefined(); // suffix differs
  });

  it('typing through: typed characters that match a shown candidate give its rest at once', () => {
    const c = new CompletionCache();
    c.put('x = ', '', cands('compute(a, b)', 'count + 1', 'None'));
    const hit = c.get('x = co', '')!;
    expect(hit.typed).toBe(2);
    // Best first still: both "co..." candidates continue, "None" is gone.
    expect(hit.candidates.map((x) => x.text)).toEqual(['mpute(a, b)', 'unt + 1']);
    expect(c.get('x = com', '')!.candidates.map((x) => x.text)).toEqual(['pute(a, b)']);
    expect(c.get('x = compute(a, b)', '')).toBeUndefined(); // fully typed: nothing left to show
    expect(c.get('x = cx', '')).toBeUndefined(); // diverged: needs a request
  });

  it('typing through survives an auto-closed bracket appearing in the suffix', () => {
    const c = new CompletionCache();
    c.put('print', '\n', cands('("hello")'));
    expect(c.get('print(', ')\n')!.candidates[0].text).toBe('"hello")');
    expect(c.get('print(', 'x\n')).toBeUndefined();
  });

  it('prefers the most recent request when several could continue', () => {
    const c = new CompletionCache();
    c.put('a', '', cands('bcdef'));
    c.put('ab', '', cands('cXYZ'));
    expect(c.get('abc', '')!.candidates[0].text).toBe('XYZ');
  });

  it('evicts the least recently used entry beyond its capacity', () => {
    const c = new CompletionCache(2);
    c.put('p1', '', cands('one'));
    c.put('p2', '', cands('two'));
    c.get('p1', ''); // p1 is now the most recent
    c.put('p3', '', cands('three'));
    expect(c.size).toBe(2);
    expect(c.get('p2', '')).toBeUndefined();
    expect(c.get('p1', '')!.candidates[0].text).toBe('one');
    expect(c.get('p3', '')!.candidates[0].text).toBe('three');
  });

  it('an empty answer is not a hit (the next keystroke asks again)', () => {
    const c = new CompletionCache();
    c.put('q', '', cands(''));
    expect(c.get('q', '')).toBeUndefined();
  });
});
