// The Forkcast settings as data: type, bounds and default of each, and the pure check that turns
// whatever a settings.json holds into values the engine can use. No 'vscode' import, so vitest
// can load it; package.json's `contributes.configuration` must agree (a unit test compares them).

export interface ForkcastSettings {
  enable: boolean;
  /** Absolute path of a GGUF file; '' = the bundled default model. */
  model: string;
  modelFolders: string[];
  candidates: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  debounceMs: number;
  contextTokens: number;
  threads: number;
}

type NumberSpec = { kind: 'number'; integer: boolean; min: number; max: number; default: number; description: string };
type BoolSpec = { kind: 'boolean'; default: boolean; description: string };
type StringSpec = { kind: 'string'; default: string; description: string };
type ListSpec = { kind: 'string[]'; default: string[]; description: string };
export type SettingSpec = NumberSpec | BoolSpec | StringSpec | ListSpec;

export const SETTINGS: { [K in keyof ForkcastSettings]: SettingSpec } = {
  enable: { kind: 'boolean', default: true, description: 'Show inline (ghost text) completions while typing.' },
  model: {
    kind: 'string',
    default: '',
    description:
      'Absolute path of the GGUF model file. Empty: the model bundled with the extension. Use "Forkcast: Select Model" to pick one. Ignored from workspace settings in Restricted Mode.',
  },
  modelFolders: {
    kind: 'string[]',
    default: [],
    description: 'Extra folders searched for .gguf files by "Forkcast: Select Model" (Ollama and LM Studio stores are searched too). Ignored from workspace settings in Restricted Mode.',
  },
  candidates: {
    kind: 'number', integer: true, min: 1, max: 64, default: 4,
    description: 'Candidates sampled from one shared prompt for each completion (best first; Alt+] / Alt+[ cycle through them).',
  },
  maxTokens: { kind: 'number', integer: true, min: 1, max: 1024, default: 64, description: 'Most tokens generated for one completion.' },
  temperature: { kind: 'number', integer: false, min: 0, max: 2, default: 0.6, description: 'Sampling temperature (0 = greedy: all candidates equal).' },
  topP: { kind: 'number', integer: false, min: 0.01, max: 1, default: 0.95, description: 'Nucleus sampling: keep the smallest set of tokens whose probability adds up to this.' },
  debounceMs: { kind: 'number', integer: true, min: 0, max: 2000, default: 120, description: 'Wait this long after the last keystroke before asking the engine (milliseconds).' },
  contextTokens: {
    kind: 'number', integer: true, min: 64, max: 32768, default: 1024,
    description: 'Token budget for the code around the cursor in the prompt (the nearest whole lines are kept). The model\'s own context length also limits it.',
  },
  threads: { kind: 'number', integer: true, min: 0, max: 256, default: 0, description: 'Engine worker threads (0 = one per physical core).' },
};

export const SETTING_KEYS = Object.keys(SETTINGS) as Array<keyof ForkcastSettings>;

/** Reads raw values (unknown JSON from settings files) and returns usable ones plus one warning per
 *  value that had to be changed. Never throws: an absurd setting must not break completions. */
export function validateSettings(raw: Partial<Record<keyof ForkcastSettings, unknown>>): { values: ForkcastSettings; warnings: string[] } {
  const warnings: string[] = [];
  const out: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const spec = SETTINGS[key];
    const v = raw[key];
    if (v === undefined || v === null) { out[key] = spec.default; continue; }
    const name = `forkcast.${key}`;
    switch (spec.kind) {
      case 'boolean':
        if (typeof v === 'boolean') out[key] = v;
        else { out[key] = spec.default; warnings.push(`${name} must be true or false, not ${show(v)}; using ${spec.default}.`); }
        break;
      case 'string':
        if (typeof v === 'string') out[key] = v.trim();
        else { out[key] = spec.default; warnings.push(`${name} must be a string, not ${show(v)}; using the default.`); }
        break;
      case 'string[]': {
        const list = Array.isArray(v) ? v : [];
        const strings = list.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
        if (!Array.isArray(v) || strings.length !== list.length) warnings.push(`${name} must be a list of folder paths; ignoring ${show(v)} entries that are not.`);
        out[key] = strings;
        break;
      }
      case 'number': {
        const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
        if (!Number.isFinite(n)) {
          out[key] = spec.default;
          warnings.push(`${name} must be a number, not ${show(v)}; using ${spec.default}.`);
          break;
        }
        let c = Math.min(spec.max, Math.max(spec.min, n));
        if (spec.integer) c = Math.round(c);
        if (n < spec.min || n > spec.max) warnings.push(`${name} = ${show(v)} is outside ${spec.min}..${spec.max}; using ${c}.`);
        else if (c !== n) warnings.push(`${name} = ${show(v)} must be a whole number; using ${c}.`);
        out[key] = c;
        break;
      }
    }
  }
  return { values: out as unknown as ForkcastSettings, warnings };
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** The `contributes.configuration.properties` block for package.json, generated from SETTINGS so the
 *  manifest and the clamping can't disagree. */
export function manifestProperties(): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const s = SETTINGS[key];
    const p: Record<string, unknown> = { description: s.description, default: s.default };
    if (s.kind === 'number') Object.assign(p, { type: s.integer ? 'integer' : 'number', minimum: s.min, maximum: s.max });
    else if (s.kind === 'string[]') Object.assign(p, { type: 'array', items: { type: 'string' } });
    else p.type = s.kind;
    // Default (window) scope on purpose: with 'machine' scopes a remote window (code-server, SSH)
    // ignores the user's own settings for the model path.
    props[`forkcast.${key}`] = p;
  }
  return props;
}

/** Settings that name files the engine opens; also capabilities.untrustedWorkspaces.restrictedConfigurations. */
export const PATH_SETTINGS: ReadonlyArray<keyof ForkcastSettings> = ['model', 'modelFolders'];

/** What VS Code's WorkspaceConfiguration offers, reduced to what the trust rule needs. */
export interface SettingsSource {
  trusted: boolean;
  get(key: keyof ForkcastSettings): unknown;
  inspect(key: keyof ForkcastSettings): { globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown; defaultValue?: unknown } | undefined;
}

/**
 * Raw values by the trust rule: in an untrusted workspace (Restricted Mode) the model paths come only
 * from the user's own settings (inspect().globalValue), so a cloned repository cannot make the engine
 * open a file of its choosing. `ignored` lists the workspace values that were dropped.
 */
export function readRaw(src: SettingsSource): { raw: Partial<Record<keyof ForkcastSettings, unknown>>; ignored: Array<keyof ForkcastSettings> } {
  const raw: Partial<Record<keyof ForkcastSettings, unknown>> = {};
  const ignored: Array<keyof ForkcastSettings> = [];
  for (const key of SETTING_KEYS) {
    if (PATH_SETTINGS.includes(key) && !src.trusted) {
      const i = src.inspect(key);
      raw[key] = i?.globalValue ?? i?.defaultValue;
      if (i?.workspaceValue !== undefined || i?.workspaceFolderValue !== undefined) ignored.push(key);
    } else {
      raw[key] = src.get(key);
    }
  }
  return { raw, ignored };
}
