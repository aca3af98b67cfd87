// openGGUF parses a copy of the file's head (the tensor data stays in the native mapping) and grows
// the head while the header runs past it. A head set tiny here makes every real header run past it,
// so the growth path is what these tests exercise; the parse must equal parsing the whole file.
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GGUFError, openGGUF, parseGGUF } from '../../engine/gguf';
import { Tokenizer } from '../../engine/tokenizer/index';
import { HAVE_SHARED, fixture } from '../shared';
import { buildGGUF } from './helpers';

const dir = mkdtempSync(join(tmpdir(), 'fc-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The GGUFError openGGUF throws (fails the test if it succeeds or throws anything else). */
function openError(path: string, opts: Parameters<typeof openGGUF>[1]): GGUFError {
  try {
    openGGUF(path, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(GGUFError);
    return e as GGUFError;
  }
  throw new Error(`${path} opened`);
}

describe.skipIf(!HAVE_SHARED)('openGGUF grows the head while the header runs past it', () => {
  it('a model whose header is 300x the first head: same metadata and tensors as the whole-file parse, data left out of the head', () => {
    const path = fixture('arch', 'qwen2-tiny.gguf');
    const whole = parseGGUF(new Uint8Array(readFileSync(path)));
    const { file, map } = openGGUF(path, { headBytes: 64 });
    try {
      expect(whole.dataOffset).toBeGreaterThan(300 * 64);
      expect(file.bytes.byteLength).toBeGreaterThanOrEqual(whole.dataOffset - whole.alignment);
      expect(file.bytes.byteLength).toBeLessThan(map.size); // the head stopped short of the tensor data
      expect(file.metadata).toEqual(whole.metadata);
      expect(file.tensors).toEqual(whole.tensors);
      // Tensors past the head come from the mapping, byte for byte.
      const last = file.tensors.reduce((a, b) => (a.offset > b.offset ? a : b));
      expect(last.offset).toBeGreaterThan(file.bytes.byteLength);
      expect(Buffer.compare(file.tensorData(last), whole.tensorData(last))).toBe(0);
    } finally {
      map.close();
    }
  });

  it('a vocab-only GGUF (50k tokens and merges, 1.7 MB) from a 4 KiB head tokenizes like the whole-file parse', () => {
    const path = fixture('vocab', 'ggml-vocab-gpt-2.gguf');
    const whole = parseGGUF(new Uint8Array(readFileSync(path)));
    const { file, map } = openGGUF(path, { headBytes: 4096 });
    map.close();
    expect(file.getStringArray('tokenizer.ggml.tokens')).toHaveLength(50257);
    expect(file.metadata).toEqual(whole.metadata);
    const text = 'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)  # ünïcode ✓';
    expect(Tokenizer.fromGGUF(file).encode(text)).toEqual(Tokenizer.fromGGUF(whole).encode(text));
  });

  it('a file cut inside its header fails as truncated at once, whatever the head size', () => {
    const bytes = readFileSync(fixture('arch', 'qwen2-tiny.gguf'));
    const cut = join(dir, 'cut.gguf');
    writeFileSync(cut, bytes.subarray(0, 10_000));
    for (const headBytes of [16, 4096, 1 << 20]) {
      const e = openError(cut, { headBytes });
      expect(e.message).toMatch(/cut\.gguf: .*(truncated|more than the \d+ bytes left in the file)/);
      expect(e.needBytes).toBeUndefined();
    }
  });
});

describe('a hostile header cannot make openGGUF copy the file', () => {
  it('an array of millions of empty strings over a sparse hole is refused at the head cap', () => {
    // The header declares 2^24 strings; the zeros of the hole read as empty strings, so only the cap
    // stops the head from growing over the whole 160 MiB file.
    const head = buildGGUF({ arrays: [['hostile.strings', ['a']]], arrayLenOverride: 2n ** 24n });
    const path = join(dir, 'hostile.gguf');
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, head);
      ftruncateSync(fd, 160 * 2 ** 20);
    } finally {
      closeSync(fd);
    }
    const e = openError(path, { headBytes: 4096, maxHeadBytes: 2 ** 20 });
    expect(e.message).toMatch(/metadata "hostile\.strings".*a header longer than 1048576 bytes is refused/);
  });

  it('an array longer than the file itself fails without any growth', () => {
    const path = join(dir, 'long.gguf');
    writeFileSync(path, buildGGUF({ arrays: [['big.arr', ['a']]], arrayLenOverride: 2n ** 40n }));
    const e = openError(path, { headBytes: 8 });
    expect(e.message).toMatch(/metadata "big\.arr" \(array length\): 1099511627776 is more than the \d+ bytes left in the file/);
    expect(e.needBytes).toBeUndefined();
  });
});
