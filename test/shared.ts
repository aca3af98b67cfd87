// Where the team's read-only fixtures live (../shared beside the checkout). Tests that need them
// skip with a clear message when the folder is missing; they never pass silently.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const SHARED = resolve(__dirname, '..', '..', 'shared');
export const HAVE_SHARED = existsSync(resolve(SHARED, 'fixtures'));
export const fixture = (...parts: string[]) => resolve(SHARED, 'fixtures', ...parts);
if (!HAVE_SHARED) console.warn(`[forkcast tests] ../shared not found at ${SHARED}: fixture tests are skipped`);
