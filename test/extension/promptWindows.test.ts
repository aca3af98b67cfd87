// The text windows the extension sends (extension/promptWindows.ts): whole lines, nearest first,
// the cursor's line always whole on both sides, capped so a huge file never crosses the pipe.
import { describe, expect, it } from 'vitest';
import { cutWindows, windowCaps } from '../../extension/promptWindows';

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i} ${'x'.repeat(i % 7)}`).join('\n');

describe('prompt windows', () => {
  it('sends the whole file when it is small', () => {
    const text = 'def f(x):\n    return x\n\nprint(f(2))\n';
    const at = text.indexOf('x\n') + 1;
    expect(cutWindows(text, at, 1024)).toEqual({ prefix: text.slice(0, at), suffix: text.slice(at) });
  });

  it('keeps the nearest whole lines within the caps for a large file', () => {
    const text = numbered(20000);
    const at = text.indexOf('line 10000 ') + 'line 10000 '.length;
    const caps = windowCaps(256);
    const { prefix, suffix } = cutWindows(text, at, 256);
    expect(text.slice(0, at).endsWith(prefix)).toBe(true);
    expect(text.slice(at).startsWith(suffix)).toBe(true);
    expect(prefix.length).toBeLessThanOrEqual(caps.prefixChars);
    expect(suffix.length).toBeLessThanOrEqual(caps.suffixChars);
    expect(prefix.length).toBeGreaterThan(caps.prefixChars / 2);
    // Whole lines: the prefix starts at a line start, the suffix ends with a newline.
    expect(prefix.startsWith('line ')).toBe(true);
    expect(text[at - prefix.length - 1]).toBe('\n');
    expect(suffix.endsWith('\n')).toBe(true);
    expect(prefix.split('\n').length).toBeLessThanOrEqual(caps.prefixLines);
  });

  it('keeps an over-long cursor line whole rather than cutting inside it', () => {
    const long = 'y'.repeat(50000);
    const text = `a\n${long}\nb`;
    const at = 2 + 25000;
    const { prefix, suffix } = cutWindows(text, at, 64);
    expect(prefix).toBe('y'.repeat(25000));
    expect(suffix).toBe('y'.repeat(25000) + '\n');
  });

  it('handles the cursor at the very start and end', () => {
    expect(cutWindows('abc', 0, 64)).toEqual({ prefix: '', suffix: 'abc' });
    expect(cutWindows('abc', 3, 64)).toEqual({ prefix: 'abc', suffix: '' });
  });
});
