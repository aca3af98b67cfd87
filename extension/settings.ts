// Reads the forkcast.* settings through VS Code, with two guards:
//  - absurd values are clamped (settingsSchema.validateSettings) and the user is warned once per value;
//  - in an untrusted workspace (Restricted Mode) model paths come only from the user's own settings:
//    a cloned repository must not be able to make the engine open files of its choosing.
import * as vscode from 'vscode';
import { ForkcastSettings, SETTING_KEYS, validateSettings } from './settingsSchema';

/** Settings that name files the engine opens. Also listed under capabilities.untrustedWorkspaces.restrictedConfigurations. */
export const PATH_SETTINGS: ReadonlyArray<keyof ForkcastSettings> = ['model', 'modelFolders'];

const warned = new Set<string>();

export function readSettings(log?: (msg: string) => void, warnUser = true): ForkcastSettings {
  const cfg = vscode.workspace.getConfiguration('forkcast');
  const raw: Partial<Record<keyof ForkcastSettings, unknown>> = {};
  for (const key of SETTING_KEYS) {
    if (PATH_SETTINGS.includes(key) && !vscode.workspace.isTrusted) {
      const i = cfg.inspect(key);
      raw[key] = i?.globalValue ?? i?.defaultValue;
      const fromWorkspace = i?.workspaceValue ?? i?.workspaceFolderValue;
      if (fromWorkspace !== undefined) note(`forkcast.${key} from the workspace settings is ignored in Restricted Mode (untrusted workspace); using your user setting.`, log, false);
    } else {
      raw[key] = cfg.get(key);
    }
  }
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
