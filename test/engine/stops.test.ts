// The end-of-block stop for multi-line completions, on hand-made texts.
import { describe, expect, it } from 'vitest';
import { blockEnd, cursorIndent, indentColumns } from '../../engine/complete';

/** Feeds `text` in chunks the way tokens arrive and returns where the sample would be cut. */
function streamed(text: string, indent: number, chunk = 3): string | null {
  let checked = 0;
  for (let n = chunk; ; n += chunk) {
    const seen = text.slice(0, Math.min(n, text.length));
    const b = blockEnd(seen, indent, checked);
    checked = b.checked;
    if (b.cut >= 0) return seen.slice(0, b.cut);
    if (n >= text.length) return null;
  }
}

describe('end of block (multi-line mode)', () => {
  it('measures indentation in columns, tabs to the next multiple of 4', () => {
    expect(indentColumns('    x')).toBe(4);
    expect(indentColumns('\tx')).toBe(4);
    expect(indentColumns('  \tx')).toBe(4);
    expect(cursorIndent('def f():\n    ')).toBe(4);
    expect(cursorIndent('def f():\n    return g(')).toBe(4);
    expect(cursorIndent('x = 1')).toBe(0);
  });

  it('ends a Python body before the next top-level statement, blank lines inside kept', () => {
    const body = 'total = 0\n    for x in xs:\n        total += x\n\n    return total\n\ndef other():\n    pass\n';
    expect(streamed(body, 4)).toBe('total = 0\n    for x in xs:\n        total += x\n\n    return total\n');
    for (const chunk of [1, 2, 5, 50]) expect(streamed(body, 4, chunk)).toBe(streamed(body, 4));
  });

  it('ends a C body before the closing brace that the editor already has below', () => {
    expect(streamed('int y = x * 2;\n    return y;\n}\n\nint main() {', 4)).toBe('int y = x * 2;\n    return y;');
  });

  it('never cuts the first line, nor text that stays inside the block, nor at indentation 0', () => {
    expect(streamed('a)\n    b = 1\n    c = 2', 4)).toBeNull();
    expect(streamed('x = 1\ny = 2\n', 0)).toBeNull();
    expect(blockEnd('\n    ', 4).cut).toBe(-1); // a blank line so far: undecided
  });
});
