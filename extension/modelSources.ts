// Where GGUF models live on a user's machine, read without trusting anything found there:
//  - folders the user configured (forkcast.modelFolders), searched a few levels deep for *.gguf;
//  - Ollama's store: $OLLAMA_MODELS or ~/.ollama/models. manifests/<host>/<namespace>/<model>/<tag>
//    are JSON (OCI-style image manifests) whose layer with mediaType
//    "application/vnd.ollama.image.model" names the GGUF blob by digest: blobs/sha256-<hex>;
//  - LM Studio: ~/.lmstudio/models and the older ~/.cache/lm-studio/models (<publisher>/<repo>/*.gguf).
// No 'vscode' import: vitest tests it against fake stores made in temp folders.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, type Dirent } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';

export type ModelSource = 'bundled' | 'folder' | 'ollama' | 'lmstudio';
export interface FoundModel { name: string; path: string; source: ModelSource; bytes: number }

const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32 (GGUF spec, file header)
const OLLAMA_MODEL_LAYER = 'application/vnd.ollama.image.model';
const MAX_MANIFEST_BYTES = 1 << 20;

/** True when the file starts with the GGUF magic: cheap check before listing a blob as a model. */
export function looksLikeGGUF(path: string): boolean {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32LE(0) === GGUF_MAGIC;
  } catch {
    return false;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** A folder's entries; an unreadable folder (permissions, races) reads as empty. */
function listDir(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function fileSize(path: string): number {
  try {
    const st = statSync(path);
    return st.isFile() ? st.size : -1;
  } catch {
    return -1;
  }
}

/** *.gguf files under root, at most `depth` folders down, sorted by path. Unreadable folders are skipped. */
export function findGGUFFiles(root: string, depth = 4, limit = 500): string[] {
  const out: string[] = [];
  const walk = (dir: string, d: number) => {
    if (out.length >= limit) return;
    for (const e of listDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory() && d > 0 && !e.name.startsWith('.')) walk(p, d - 1);
      else if ((e.isFile() || e.isSymbolicLink()) && e.name.toLowerCase().endsWith('.gguf') && fileSize(p) >= 0) out.push(p);
      if (out.length >= limit) return;
    }
  };
  walk(root, depth);
  return out.sort();
}

export interface OllamaModel { name: string; blob: string; bytes: number }

/** Parses one Ollama manifest (untrusted JSON). Returns the model blob's digest or an error string. */
export function parseOllamaManifest(json: string): { digest: string; size: number } | { error: string } {
  let m: unknown;
  try {
    m = JSON.parse(json);
  } catch (e) {
    return { error: `not JSON (${(e as Error).message})` };
  }
  const layers = (m as { layers?: unknown })?.layers;
  if (!Array.isArray(layers)) return { error: 'no "layers" list' };
  const layer = layers.find((l) => l && typeof l === 'object' && (l as { mediaType?: unknown }).mediaType === OLLAMA_MODEL_LAYER) as
    | { digest?: unknown; size?: unknown }
    | undefined;
  if (!layer) return { error: `no layer of type ${OLLAMA_MODEL_LAYER}` };
  // The digest becomes a file name: accept only the exact sha256 form, nothing that could leave blobs/.
  if (typeof layer.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(layer.digest)) return { error: `bad digest ${JSON.stringify(layer.digest)}` };
  return { digest: layer.digest, size: typeof layer.size === 'number' ? layer.size : -1 };
}

/** The name Ollama shows: library models as "model:tag", others as "namespace/model:tag", other
 *  registries with the host in front. */
export function ollamaName(manifestRel: string[]): string {
  const [host, ns, model, tag] = manifestRel;
  const base = host === 'registry.ollama.ai' ? (ns === 'library' ? model : `${ns}/${model}`) : `${host}/${ns}/${model}`;
  return `${base}:${tag}`;
}

/** Models in an Ollama store (root = the folder holding manifests/ and blobs/). */
export function readOllamaStore(root: string, onProblem?: (msg: string) => void): OllamaModel[] {
  const manifests = join(root, 'manifests');
  const out: OllamaModel[] = [];
  const files: string[] = [];
  const walk = (dir: string, d: number) => {
    for (const e of listDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory() && d > 0) walk(p, d - 1);
      else if (e.isFile() && d === 0) files.push(p);
    }
  };
  walk(manifests, 3); // host/namespace/model/tag
  for (const f of files.sort()) {
    const rel = relative(manifests, f).split(sep);
    if (rel.length !== 4) continue;
    const size = fileSize(f);
    if (size < 0 || size > MAX_MANIFEST_BYTES) { onProblem?.(`${f}: manifest too large`); continue; }
    const parsed = parseOllamaManifest(readFileSync(f, 'utf8'));
    if ('error' in parsed) { onProblem?.(`${f}: ${parsed.error}`); continue; }
    const blob = join(root, 'blobs', parsed.digest.replace(':', '-'));
    const bytes = fileSize(blob);
    if (bytes < 0) { onProblem?.(`${f}: blob ${basename(blob)} is missing`); continue; }
    if (!looksLikeGGUF(blob)) { onProblem?.(`${f}: blob ${basename(blob)} is not a GGUF file`); continue; }
    out.push({ name: ollamaName(rel), blob, bytes });
  }
  return out;
}

export interface ModelSearch {
  home: string;
  folders: string[];
  /** $OLLAMA_MODELS when set. */
  ollamaModels?: string;
  /** The model shipped with the extension (may not exist in a development checkout). */
  bundled?: string;
}

/** Every model Select Model offers: bundled first, then configured folders, Ollama, LM Studio. */
export function listModels(s: ModelSearch, onProblem?: (msg: string) => void): FoundModel[] {
  const out: FoundModel[] = [];
  const seen = new Set<string>();
  const add = (m: FoundModel) => {
    if (seen.has(m.path)) return;
    seen.add(m.path);
    out.push(m);
  };
  if (s.bundled && fileSize(s.bundled) >= 0) add({ name: `${basename(s.bundled, '.gguf')} (bundled)`, path: s.bundled, source: 'bundled', bytes: fileSize(s.bundled) });
  for (const folder of s.folders) {
    for (const p of findGGUFFiles(folder)) add({ name: relative(folder, p) || basename(p), path: p, source: 'folder', bytes: fileSize(p) });
  }
  for (const m of readOllamaStore(s.ollamaModels || join(s.home, '.ollama', 'models'), onProblem)) {
    add({ name: m.name, path: m.blob, source: 'ollama', bytes: m.bytes });
  }
  for (const root of [join(s.home, '.lmstudio', 'models'), join(s.home, '.cache', 'lm-studio', 'models')]) {
    for (const p of findGGUFFiles(root, 3)) add({ name: relative(root, p), path: p, source: 'lmstudio', bytes: fileSize(p) });
  }
  return out;
}

/** The model shipped in the extension's models/ folder: forkcast-default*.gguf as the engine's own
 *  lookup (engine/cli.ts) prefers, else the first GGUF there; undefined in a build without one. */
export function bundledModelPath(extensionPath: string): string | undefined {
  const dir = join(extensionPath, 'models');
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.gguf')).sort();
  const pick = files.find((f) => f.startsWith('forkcast-default')) ?? files[0];
  return pick ? join(dir, pick) : undefined;
}
