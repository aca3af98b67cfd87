// Reads the forkcast.* settings through VS Code, with two guards (rules in settingsSchema.ts):
//  - absurd values are clamped (validateSettings) and the user is warned once per value;
//  - in an untrusted workspace (Restricted Mode) model paths come only from the user's own settings
//    (readRaw): a cloned repository must not be able to make the engine open files of its choosing.
import * as vscode from 'vscode';
import { ForkcastSettings, readRaw, validateSettings } from './settingsSchema';

const warned = new Set<string>();

export function readSettings(log?: (msg: string) => void, warnUser = true): ForkcastSettings {
  const cfg = vscode.workspace.getConfiguration('forkcast');
  const { raw, ignored } = readRaw({ trusted: vscode.workspace.isTrusted, get: (k) => cfg.get(k), inspect: (k) => cfg.inspect(k) });
  for (const key of ignored) note(`forkcast.${key} from the workspace settings is ignored in Restricted Mode (untrusted workspace); using your user setting.`, log, false);
  const { values, warnings } = validateSettings(raw);
  for (const w of warnings) note(w, log, warnUser);
  return values;
}

function note(msg: string, log: ((m: string) => void) | undefined, warnUser: boolean) {
  log?.(msg);
  if (warned.has(msg)) return;
  warned.add(msg);
  if (warnUser) void vscode.window.showWarningMessage(`Forkcast: ${msg}`);
}
