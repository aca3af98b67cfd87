// Finding models on disk (extension/modelSources.ts) against FAKE stores built in a temp folder:
// a fake Ollama store (manifests + blobs laid out as Ollama does), fake LM Studio and user folders.
// The "GGUF" blobs are 4-byte magic + padding stand-ins: only the listing is under test here.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundledModelPath, findGGUFFiles, listModels, ollamaName, parseOllamaManifest, readOllamaStore } from '../../extension/modelSources';

const root = mkdtempSync(join(tmpdir(), 'forkcast-fake-model-stores-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const fakeGGUF = (path: string, bytes = 64) => {
  const b = Buffer.alloc(bytes);
  b.write('GGUF', 0, 'latin1');
  writeFileSync(path, b);
};
const digest = (c: string) => 'sha256:' + c.repeat(64);

function manifest(layers: unknown[]) {
  return JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { digest: digest('c') }, layers });
}

/** A fake ~/.ollama/models with two good models and three broken manifests. */
function fakeOllamaStore(home: string) {
  const store = join(home, '.ollama', 'models');
  const man = (host: string, ns: string, model: string, tag: string, body: string) => {
    mkdirSync(join(store, 'manifests', host, ns, model), { recursive: true });
    writeFileSync(join(store, 'manifests', host, ns, model, tag), body);
  };
  mkdirSync(join(store, 'blobs'), { recursive: true });
  fakeGGUF(join(store, 'blobs', 'sha256-' + 'a'.repeat(64)), 1000);
  fakeGGUF(join(store, 'blobs', 'sha256-' + 'b'.repeat(64)), 2000);
  writeFileSync(join(store, 'blobs', 'sha256-' + 'e'.repeat(64)), 'not a model');
  const layer = (d: string, size: number) => ({ mediaType: 'application/vnd.ollama.image.model', digest: digest(d), size });
  const tmpl = { mediaType: 'application/vnd.ollama.image.template', digest: digest('d'), size: 10 };
  man('registry.ollama.ai', 'library', 'qwen2.5-coder', '1.5b', manifest([tmpl, layer('a', 1000)]));
  man('registry.ollama.ai', 'someone', 'tiny-coder', 'latest', manifest([layer('b', 2000)]));
  man('registry.ollama.ai', 'library', 'broken', 'latest', '{not json');
  man('registry.ollama.ai', 'library', 'missing-blob', 'latest', manifest([layer('f', 5)]));
  man('registry.ollama.ai', 'library', 'not-gguf', 'latest', manifest([layer('e', 11)]));
  return store;
}

describe('Ollama manifests', () => {
  it('finds the model layer and its digest', () => {
    const m = parseOllamaManifest(manifest([{ mediaType: 'application/vnd.ollama.image.license', digest: digest('1') }, { mediaType: 'application/vnd.ollama.image.model', digest: digest('2'), size: 7 }]));
    expect(m).toEqual({ digest: digest('2'), size: 7 });
  });
  it('rejects hostile or malformed manifests with a reason', () => {
    expect(parseOllamaManifest('[')).toHaveProperty('error', expect.stringMatching(/not JSON/));
    expect(parseOllamaManifest('{}')).toEqual({ error: 'no "layers" list' });
    expect(parseOllamaManifest(manifest([{ mediaType: 'application/vnd.ollama.image.template', digest: digest('1') }]))).toHaveProperty('error', expect.stringMatching(/no layer of type/));
    // A digest that would walk out of blobs/ never becomes a path.
    expect(parseOllamaManifest(manifest([{ mediaType: 'application/vnd.ollama.image.model', digest: 'sha256:../../../etc/passwd' }]))).toHaveProperty('error', expect.stringMatching(/bad digest/));
    expect(parseOllamaManifest('null')).toEqual({ error: 'no "layers" list' });
  });
  it('names models as Ollama does', () => {
    expect(ollamaName(['registry.ollama.ai', 'library', 'qwen2.5-coder', '1.5b'])).toBe('qwen2.5-coder:1.5b');
    expect(ollamaName(['registry.ollama.ai', 'someone', 'm', 'latest'])).toBe('someone/m:latest');
    expect(ollamaName(['hf.co', 'org', 'repo', 'Q4_K_M'])).toBe('hf.co/org/repo:Q4_K_M');
  });
  it('lists the good models of a fake store and reports each broken one', () => {
    const home = join(root, 'home-ollama');
    const store = fakeOllamaStore(home);
    const problems: string[] = [];
    const models = readOllamaStore(store, (p) => problems.push(p));
    expect(models.map((m) => [m.name, m.bytes])).toEqual([
      ['qwen2.5-coder:1.5b', 1000],
      ['someone/tiny-coder:latest', 2000],
    ]);
    expect(models[0].blob).toBe(join(store, 'blobs', 'sha256-' + 'a'.repeat(64)));
    expect(problems).toHaveLength(3);
    expect(problems.find((p) => p.includes('broken'))).toMatch(/not JSON/);
    expect(problems.find((p) => p.includes('missing-blob'))).toMatch(/is missing/);
    expect(problems.find((p) => p.includes('not-gguf'))).toMatch(/not a GGUF file/);
  });
  it('returns nothing for a store that does not exist', () => {
    expect(readOllamaStore(join(root, 'nowhere'))).toEqual([]);
  });
});

describe('listing every source', () => {
  it('combines bundled, folders, Ollama and LM Studio, without duplicates', () => {
    const home = join(root, 'home-all');
    fakeOllamaStore(home);
    const lms = join(home, '.lmstudio', 'models', 'pub', 'repo');
    mkdirSync(lms, { recursive: true });
    fakeGGUF(join(lms, 'coder-Q8_0.gguf'));
    const old = join(home, '.cache', 'lm-studio', 'models', 'p2', 'r2');
    mkdirSync(old, { recursive: true });
    fakeGGUF(join(old, 'x.gguf'));
    const mine = join(root, 'my-models');
    mkdirSync(join(mine, 'sub', '.hidden'), { recursive: true });
    fakeGGUF(join(mine, 'a.gguf'));
    fakeGGUF(join(mine, 'sub', 'B.GGUF'));
    fakeGGUF(join(mine, 'sub', '.hidden', 'skip.gguf'));
    writeFileSync(join(mine, 'notes.txt'), 'x');
    symlinkSync(join(mine, 'a.gguf'), join(mine, 'link.gguf'));
    const bundled = join(root, 'ext', 'models', 'default.gguf');
    mkdirSync(join(root, 'ext', 'models'), { recursive: true });
    fakeGGUF(bundled);

    const found = listModels({ home, folders: [mine, mine, join(root, 'missing-folder')], bundled });
    expect(found.map((m) => [m.source, m.name])).toEqual([
      ['bundled', 'default (bundled)'],
      ['folder', 'a.gguf'],
      ['folder', 'link.gguf'],
      ['folder', join('sub', 'B.GGUF')],
      ['ollama', 'qwen2.5-coder:1.5b'],
      ['ollama', 'someone/tiny-coder:latest'],
      ['lmstudio', join('pub', 'repo', 'coder-Q8_0.gguf')],
      ['lmstudio', join('p2', 'r2', 'x.gguf')],
    ]);
  });
  it('respects the depth limit of a folder search', () => {
    const deep = join(root, 'deep', '1', '2', '3');
    mkdirSync(deep, { recursive: true });
    fakeGGUF(join(deep, 'm.gguf'));
    expect(findGGUFFiles(join(root, 'deep'), 2)).toEqual([]);
    expect(findGGUFFiles(join(root, 'deep'), 3)).toEqual([join(deep, 'm.gguf')]);
  });
});

describe('the bundled model', () => {
  it('is models/forkcast-default*.gguf of the extension, as the engine picks it', () => {
    const ext = join(root, 'fake-extension');
    expect(bundledModelPath(ext)).toBeUndefined();
    mkdirSync(join(ext, 'models'), { recursive: true });
    expect(bundledModelPath(ext)).toBeUndefined();
    fakeGGUF(join(ext, 'models', 'aaa-other.gguf'));
    expect(bundledModelPath(ext)).toBe(join(ext, 'models', 'aaa-other.gguf'));
    fakeGGUF(join(ext, 'models', 'forkcast-default-q8_0.gguf'));
    writeFileSync(join(ext, 'models', 'forkcast-default.ref.json'), '{}');
    expect(bundledModelPath(ext)).toBe(join(ext, 'models', 'forkcast-default-q8_0.gguf'));
  });
});
