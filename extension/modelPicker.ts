// "Forkcast: Select Model": GGUF files from the configured folders, Ollama's store, LM Studio's
// folders and the bundled model, in one QuickPick; the choice is written to forkcast.model (user
// settings), and the configuration listener in extension.ts reloads the engine.
import * as vscode from 'vscode';
import { homedir } from 'node:os';
import { basename } from 'node:path';
import { bundledModelPath, FoundModel, listModels, ModelSource } from './modelSources';
import { Log } from './log';
import { ForkcastSettings } from './settingsSchema';

const SOURCE_LABEL: Record<ModelSource, string> = {
  bundled: 'Bundled with Forkcast',
  folder: 'forkcast.modelFolders',
  ollama: 'Ollama',
  lmstudio: 'LM Studio',
};

interface ModelPick extends vscode.QuickPickItem { model?: FoundModel; browse?: true }

export async function selectModelCommand(extensionPath: string, settings: ForkcastSettings, log: Log): Promise<string | undefined> {
  const bundled = bundledModelPath(extensionPath);
  const found = listModels(
    { home: homedir(), folders: settings.modelFolders, ollamaModels: process.env.OLLAMA_MODELS, bundled },
    (problem) => log('warn', `model search: ${problem}`),
  );
  if (!bundled) found.unshift({ name: 'Bundled default model', path: '', source: 'bundled', bytes: -1 });
  const current = settings.model;
  const items: ModelPick[] = [];
  let lastSource: ModelSource | undefined;
  for (const m of found) {
    if (m.source !== lastSource) items.push({ label: SOURCE_LABEL[m.source], kind: vscode.QuickPickItemKind.Separator });
    lastSource = m.source;
    const isCurrent = m.source === 'bundled' ? current === '' : current === m.path;
    items.push({
      label: `${isCurrent ? '$(check) ' : ''}${m.name}`,
      description: m.bytes >= 0 ? formatBytes(m.bytes) : undefined,
      detail: m.path || undefined,
      model: m,
    });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(folder-opened) Browse for a .gguf file…', browse: true });
  log('info', `select model: ${found.length} models found`);
  const pick = await vscode.window.showQuickPick(items, { title: 'Forkcast: Select Model', placeHolder: `Current: ${current || 'bundled default'}`, matchOnDetail: true });
  if (!pick) return undefined;
  let path: string;
  if (pick.browse) {
    const uris = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'GGUF models': ['gguf'] }, title: 'Forkcast: choose a GGUF model' });
    if (!uris?.length) return undefined;
    path = uris[0].fsPath;
  } else {
    path = pick.model!.source === 'bundled' ? '' : pick.model!.path;
  }
  await vscode.workspace.getConfiguration('forkcast').update('model', path, vscode.ConfigurationTarget.Global);
  log('info', `select model: forkcast.model = ${path || '(bundled)'}`);
  return path;
}

export function modelLabel(path: string): string {
  return path ? basename(path) : 'bundled model';
}

function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}
