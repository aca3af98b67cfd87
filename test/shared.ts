// Where the team's read-only fixtures live (../shared beside the checkout). Tests that need them
// skip with a clear message when the folder is missing; they never pass silently.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

export const SHARED = resolve(__dirname, '..', '..', 'shared');
export const HAVE_SHARED = existsSync(resolve(SHARED, 'fixtures'));
export const fixture = (...parts: string[]) => resolve(SHARED, 'fixtures', ...parts);
if (!HAVE_SHARED) console.warn(`[forkcast tests] ../shared not found at ${SHARED}: fixture tests are skipped`);

const req = createRequire(__filename);
/** Where an installed npm package (a dev dependency) resolves, or null when it is not installed. */
export const resolvePackage = (spec: string): string | null => {
  try { return req.resolve(spec); } catch { return null; }
};
export const HAVE_LLAMA_CPP = resolvePackage('node-llama-cpp') !== null;

/** node-llama-cpp's prebuilt CPU llama.cpp in this process, or why it could not be loaded. */
export async function loadLlamaCpp<L>(logLevel: 'error' | 'disabled' = 'error'): Promise<{ llama: L | null; why: string }> {
  try {
    const { getLlama } = await import('node-llama-cpp');
    return { llama: (await getLlama({ gpu: false, build: 'never', logLevel: logLevel as never })) as unknown as L, why: '' };
  } catch (e) {
    return { llama: null, why: (e as Error).message };
  }
}
