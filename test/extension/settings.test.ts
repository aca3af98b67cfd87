// Setting validation: absurd values are clamped with a warning, never passed on or thrown
// (extension/settingsSchema.ts), and package.json's manifest agrees with the clamping table.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manifestProperties, PATH_SETTINGS, readRaw, SETTINGS, validateSettings } from '../../extension/settingsSchema';

describe('settings validation', () => {
  it('keeps sane values as they are, with no warning', () => {
    const { values, warnings } = validateSettings({ candidates: 8, temperature: 0.2, debounceMs: 50, model: '/m/a.gguf', modelFolders: ['/m'], enable: false });
    expect(warnings).toEqual([]);
    expect(values).toMatchObject({ candidates: 8, temperature: 0.2, debounceMs: 50, model: '/m/a.gguf', modelFolders: ['/m'], enable: false });
  });

  it('fills defaults for missing settings', () => {
    const { values, warnings } = validateSettings({});
    expect(warnings).toEqual([]);
    expect(values.candidates).toBe(SETTINGS.candidates.default);
    expect(values.model).toBe('');
  });

  it('clamps out-of-range numbers and says so', () => {
    const { values, warnings } = validateSettings({ candidates: 100000, temperature: -3, debounceMs: 1e9, contextTokens: 1, threads: -4, topP: 0 });
    expect(values).toMatchObject({ candidates: 64, temperature: 0, debounceMs: 2000, contextTokens: 64, threads: 0, topP: 0.01 });
    expect(warnings).toHaveLength(6);
    expect(warnings[0]).toMatch(/forkcast\.candidates = 100000 is outside 1\.\.64.*using 64/);
  });

  it('rounds fractional counts and reads numeric strings', () => {
    const { values, warnings } = validateSettings({ candidates: 3.6, maxTokens: '32' });
    expect(values.candidates).toBe(4);
    expect(values.maxTokens).toBe(32);
    // Only the rounding is worth a warning: "32" means 32.
    expect(warnings).toEqual(['forkcast.candidates = 3.6 must be a whole number; using 4.']);
  });

  it('replaces values of the wrong type by the default with a warning', () => {
    const { values, warnings } = validateSettings({ candidates: 'lots', temperature: NaN, enable: 'yes', model: 42, modelFolders: 'not-a-list', debounceMs: Infinity });
    expect(values).toMatchObject({ candidates: 4, temperature: 0.6, enable: true, model: '', modelFolders: [], debounceMs: 120 });
    expect(warnings).toHaveLength(6);
    expect(warnings.join('\n')).toMatch(/forkcast\.enable must be true or false/);
  });

  it('drops non-string folder entries and keeps the rest', () => {
    const { values, warnings } = validateSettings({ modelFolders: ['/a', 7, '', ' /b '] });
    expect(values.modelFolders).toEqual(['/a', '/b']);
    expect(warnings).toHaveLength(1);
  });
});

describe('package.json manifest', () => {
  const pkg = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8'));
  it('contributes every setting with the same type, bounds and default the clamping uses', () => {
    expect(pkg.contributes.configuration.properties).toEqual(manifestProperties());
  });
  it('declares model paths restricted in untrusted workspaces', () => {
    const r = pkg.capabilities.untrustedWorkspaces;
    expect(r.supported).toBe('limited');
    expect(r.restrictedConfigurations.sort()).toEqual(PATH_SETTINGS.map((k) => `forkcast.${k}`).sort());
  });
  it('contributes the four commands', () => {
    expect(pkg.contributes.commands.map((c: { command: string }) => c.command).sort()).toEqual(['forkcast.generate', 'forkcast.selectModel', 'forkcast.showLog', 'forkcast.toggle']);
  });
});

describe('untrusted workspaces (Restricted Mode)', () => {
  /** A FAKE configuration source: user (global) and workspace layers as VS Code's inspect() reports them. */
  const fakeConfig = (trusted: boolean) => {
    const user: Record<string, unknown> = { model: '/home/me/models/mine.gguf', candidates: 8 };
    const workspace: Record<string, unknown> = { model: '/repo/evil.gguf', modelFolders: ['/repo/models'], candidates: 2 };
    return {
      trusted,
      get: (k: string) => workspace[k] ?? user[k],
      inspect: (k: string) => ({ globalValue: user[k], workspaceValue: workspace[k], defaultValue: (SETTINGS as Record<string, { default: unknown }>)[k].default }),
    };
  };

  it('ignores model paths from the workspace and keeps the user\'s', () => {
    const { raw, ignored } = readRaw(fakeConfig(false));
    expect(raw.model).toBe('/home/me/models/mine.gguf');
    expect(raw.modelFolders).toEqual([]); // the default: the user set none
    expect(ignored).toEqual(['model', 'modelFolders']);
    // Sampling settings are harmless and still follow the workspace.
    expect(raw.candidates).toBe(2);
  });

  it('uses workspace model paths in a trusted workspace', () => {
    const { raw, ignored } = readRaw(fakeConfig(true));
    expect(raw.model).toBe('/repo/evil.gguf');
    expect(raw.modelFolders).toEqual(['/repo/models']);
    expect(ignored).toEqual([]);
  });
});
