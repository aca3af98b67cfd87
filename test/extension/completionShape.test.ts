// The single/multi-line rule and the shaping of engine text to the document (extension/completionShape.ts).
import { describe, expect, it } from 'vitest';
import { fitIndentation, shapeCandidate, wantsMultiLine } from '../../extension/completionShape';

/** `|` marks the cursor; returns the rule's answer there. */
function rule(src: string, tabSize = 4): boolean {
  const lines = src.split('\n');
  const line = lines.findIndex((l) => l.includes('|'));
  const character = lines[line].indexOf('|');
  lines[line] = lines[line].replace('|', '');
  return wantsMultiLine(lines, line, character, tabSize);
}

describe('single/multi-line rule', () => {
  it('is multi-line on an empty line after a Python block opener', () => {
    expect(rule('def area(r):\n    |')).toBe(true);
    expect(rule('class A:\n    def f(self):  # comment\n        |\n')).toBe(true);
  });
  it('is multi-line on an empty line after a C-family brace or arrow', () => {
    expect(rule('function f(a) {\n  |\n}')).toBe(true);
    expect(rule('const g = (x) =>\n  |')).toBe(true);
    expect(rule('items.forEach(it => {\n\t|\n});', 4)).toBe(true);
  });
  it('is multi-line at the end of a new block (the body has nothing after it yet)', () => {
    expect(rule('def f(x):\n    y = x * 2\n    |\n\ndef g():\n    pass')).toBe(true);
    expect(rule('if ok:\n    a = 1\n    |')).toBe(true); // end of file
  });
  it('is single-line with text on the line, before or after the cursor', () => {
    expect(rule('def area(r):\n    return |')).toBe(false);
    expect(rule('def area(r):\n    |return r')).toBe(false);
    expect(rule('x = foo(|)')).toBe(false);
  });
  it('is single-line between statements of one block and at top level', () => {
    expect(rule('def f():\n    a = 1\n    |\n    b = 2')).toBe(false);
    expect(rule('import os\n|\nimport sys')).toBe(false);
    expect(rule('x = 1\n|')).toBe(false);
    expect(rule('|')).toBe(false);
  });
  it('is single-line when the cursor sits shallower than the block above (a dedent)', () => {
    expect(rule('def f():\n        deep = 1\n    |')).toBe(true); // still inside f: ends the block
    expect(rule('    a = 1\n  |\n')).toBe(true);
    expect(rule('for i in x:\n    a = 1\n|')).toBe(false); // top level after the block
  });
});

describe('shaping a candidate', () => {
  it('cuts a single-line completion at the first newline and drops trailing spaces', () => {
    expect(shapeCandidate('return r * r  \n\ndef g():', { singleLine: true, lineSuffix: '' })).toBe('return r * r');
  });
  it('does not repeat what the rest of the line already holds', () => {
    expect(shapeCandidate('x, y)', { singleLine: true, lineSuffix: ')' })).toBe('x, y');
    expect(shapeCandidate('a]', { singleLine: true, lineSuffix: ']  ' })).toBe('a');
    expect(shapeCandidate('(a)', { singleLine: true, lineSuffix: ':' })).toBe('(a)');
  });
  it('does not double the space the user typed mid-line, but keeps indentation at a line start', () => {
    expect(shapeCandidate(' math.pi * r', { singleLine: true, lineSuffix: '', linePrefix: 'x = ' })).toBe('math.pi * r');
    expect(shapeCandidate(' math.pi * r', { singleLine: true, lineSuffix: '', linePrefix: 'x =' })).toBe(' math.pi * r');
    expect(shapeCandidate('    return x', { singleLine: true, lineSuffix: '', linePrefix: '    ' })).toBe('    return x');
  });
  it('returns nothing for whitespace-only text', () => {
    expect(shapeCandidate('   \n  ', { singleLine: false, lineSuffix: '' })).toBe('');
    expect(shapeCandidate('\nfoo', { singleLine: true, lineSuffix: '' })).toBe('');
  });
  it('re-indents multi-line text with the document unit (spaces → tabs), keeping depth', () => {
    const text = 'if x:\n        y = 1\n    z = 2';
    expect(fitIndentation(text, { insertSpaces: false, tabSize: 4 })).toBe('if x:\n\t\ty = 1\n\tz = 2');
    expect(shapeCandidate(text + '\n\n', { singleLine: false, lineSuffix: '', style: { insertSpaces: false, tabSize: 4 } })).toBe('if x:\n\t\ty = 1\n\tz = 2');
  });
  it('re-indents tabs into spaces of the editor tab size, odd widths kept', () => {
    expect(fitIndentation('{\n\tfoo();\n\t\tbar();\n}', { insertSpaces: true, tabSize: 2 })).toBe('{\n  foo();\n    bar();\n}');
    expect(fitIndentation('a\n      b', { insertSpaces: false, tabSize: 4 })).toBe('a\n\t  b');
  });
  it('normalises CRLF from the engine to the editor\'s \\n (VS Code converts on insert)', () => {
    expect(shapeCandidate('a\r\n    b', { singleLine: false, lineSuffix: '' })).toBe('a\n    b');
  });
});
