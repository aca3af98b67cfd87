// A loaded model: the memory-mapped GGUF, its tokenizer, the spec the native forward pass runs,
// and the facts the engine reports about it (ModelInfo). One owner: dispose() releases the native
// model and closes the mapping, which the native side unmaps when the last context using it is gone.
import { basename } from 'node:path';
import { specFromGGUF } from './archTable';
import { ggmlTypeName, openGGUF, type GGUFFile } from './gguf';
import { loadAddon, type ContextOptions, type ModelSpec, type NativeContext, type NativeModel } from './native';
import { chooseTemplate } from './prompt';
import type { ModelInfo } from './protocol';
import { Tokenizer } from './tokenizer/index';

export interface LoadOptions {
  /** Default shared-prompt KV capacity for contexts (tokens); default min(model's context, 4096). */
  ctx?: number;
  /** Worker threads; default = physical cores. */
  threads?: number;
  warn?: (message: string) => void;
}

export interface Model {
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer;
  readonly spec: ModelSpec;
  readonly native: NativeModel;
  readonly file: GGUFFile;
  /** Defaults used by createContext for missing options. */
  readonly ctx: number;
  readonly threads: number;
  createContext(opts?: Partial<ContextOptions>): NativeContext;
  dispose(): void;
}

export const DEFAULT_CTX = 4096;

/** Total number of weights: sum over tensors of the product of their dims. */
function parameterCount(file: GGUFFile): number {
  return file.tensors.reduce((s, t) => s + t.dims.reduce((p, d) => p * d, 1), 0);
}

function tensorTypes(file: GGUFFile): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of file.tensors) {
    const name = ggmlTypeName(t.type);
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

export function loadModel(path: string, opts: LoadOptions = {}): Model {
  const t0 = performance.now();
  const addon = loadAddon();
  const { file, map } = openGGUF(path);
  let spec: ModelSpec, tokenizer: Tokenizer, native: NativeModel;
  try {
    spec = specFromGGUF(file);
    tokenizer = Tokenizer.fromGGUF(file, { warn: opts.warn });
    native = new addon.Model(map, spec);
  } catch (e) {
    map.close();
    throw e;
  }
  const threads = opts.threads && opts.threads > 0 ? Math.floor(opts.threads) : addon.cpuInfo().physicalCores;
  const ctx = Math.max(1, Math.floor(opts.ctx && opts.ctx > 0 ? opts.ctx : Math.min(spec.n_ctx_train, DEFAULT_CTX)));
  const info: ModelInfo = {
    path,
    name: file.getString('general.name', basename(path)),
    architecture: file.getString('general.architecture'),
    parameters: parameterCount(file),
    tensor_types: tensorTypes(file),
    context_length: spec.n_ctx_train,
    vocab_size: spec.n_vocab, // the logits' length: rows of the output matrix
    special_tokens: tokenizer.special,
    fim_template: chooseTemplate(tokenizer).name,
    load_ms: 0,
  };
  info.load_ms = performance.now() - t0;
  let disposed = false;
  return {
    info, tokenizer, spec, native, file, ctx, threads,
    createContext(o: Partial<ContextOptions> = {}) {
      if (disposed) throw new Error('model was disposed');
      return new addon.Context(native, {
        ctx: o.ctx ?? ctx,
        maxSamples: o.maxSamples ?? 1,
        maxDecode: o.maxDecode ?? 256,
        threads: o.threads ?? threads,
      });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      native.dispose();
      map.close(); // unmapped once the native model's last context is gone
    },
  };
}
