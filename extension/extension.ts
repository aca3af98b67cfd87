// Activation only wires the rooms together: log, settings, engine process, status bar, inline
// provider, commands. Everything it creates is owned by context.subscriptions (or deactivate).
import * as vscode from 'vscode';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { EngineClient } from './engineClient';
import { CandidatePick, generateCommand } from './generate';
import { CompletionEvent, InlineProvider } from './inlineProvider';
import { createLog } from './log';
import { modelLabel, selectModelCommand } from './modelPicker';
import { readSettings } from './settings';
import { ForkcastSettings } from './settingsSchema';
import { StatusBar } from './statusBar';
import type { CompleteResult, ModelInfo } from '../engine/protocol';

/** What activate() returns: the extension-host tests drive Forkcast through this and the commands. */
export interface ForkcastApi {
  engine: EngineClient;
  provider: InlineProvider;
  settings(): ForkcastSettings;
  onDidComplete: vscode.Event<CompletionEvent>;
  onDidShowCandidates: vscode.Event<CandidatePick[]>;
  onDidLoadModel: vscode.Event<ModelInfo>;
  onDidFailModel: vscode.Event<string>;
}

let engine: EngineClient | undefined;

export function activate(context: vscode.ExtensionContext): ForkcastApi {
  const log = createLog();
  const own = <T extends vscode.Disposable>(d: T): T => { context.subscriptions.push(d); return d; };
  own(log.channel);
  let settings = readSettings((m) => log('warn', m));
  const status = own(new StatusBar());
  status.setEnabled(settings.enable);
  const loaded = own(new vscode.EventEmitter<ModelInfo>());
  const failed = own(new vscode.EventEmitter<string>());
  const candidatesShown = own(new vscode.EventEmitter<CandidatePick[]>());
  let progressSink: ((message: string, fraction: number) => void) | undefined;

  const client = new EngineClient({
    cliPath: join(context.extensionPath, 'dist', 'cli.js'),
    threads: settings.threads,
    log: (level, msg) => log(level, msg),
    onState: (s, detail) => status.setState(s, detail),
    onModel: (info) => {
      status.setModel(info.name || basename(info.path));
      loaded.fire(info);
    },
    onProgress: (p) => progressSink?.(p.message, p.fraction),
    onCrash: ({ reason, first, restartInMs }) => {
      provider.clearCache();
      if (!first) return; // told once per session; the log has every later one
      void vscode.window
        .showWarningMessage(`Forkcast: the completion engine stopped (${reason}); restarting it in ${(restartInMs / 1000).toFixed(1)} s. Your text is safe.`, 'Show Log')
        .then((a) => a && log.channel.show(true));
    },
  });
  engine = client;

  const onTimings = (ms: number, r: CompleteResult) => {
    const t = r.timings;
    status.setLatency(ms, t.decode_ms > 0 ? (t.generated_tokens * 1000) / t.decode_ms : 0, t.reused_tokens, t.prompt_tokens);
  };
  const provider = own(new InlineProvider(client, () => settings, log, onTimings));
  own(vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, provider));

  const modelPath = (s: ForkcastSettings) => (s.model ? s.model.replace(/^~(?=$|[\\/])/, homedir()) : undefined);

  /** Loads the model named by the settings with a progress notification; a bad file leaves the
   *  previous model in place and says what is wrong with which file. */
  const reloadModel = (s: ForkcastSettings) => {
    const path = modelPath(s);
    const label = modelLabel(path ?? '');
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Forkcast: loading ${label}` }, async (progress) => {
      let last = 0;
      progressSink = (message, fraction) => {
        const f = Math.max(last, Math.min(1, fraction));
        progress.report({ message, increment: (f - last) * 100 });
        last = f;
      };
      try {
        await client.setModel(path);
        provider.clearCache();
      } catch (e) {
        const prev = client.model ? `Still using ${client.model.name || basename(client.model.path)}.` : '';
        const msg = `Forkcast: could not load the model ${path ?? '(bundled)'}: ${(e as Error).message.replace(/^Could not load [^:]*: /, '')}. ${prev}`;
        failed.fire(msg);
        void vscode.window.showErrorMessage(msg);
      } finally {
        progressSink = undefined;
      }
    });
  };

  own(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('forkcast')) return;
      const prev = settings;
      settings = readSettings((m) => log('warn', m));
      status.setEnabled(settings.enable);
      client.threads = settings.threads;
      if (prev.model !== settings.model || prev.threads !== settings.threads) void reloadModel(settings);
      else {
        provider.clearCache(); // old candidates were sampled with other settings
        const { candidates, maxTokens, temperature, topP, debounceMs, contextTokens, enable } = settings;
        log('info', `sampling settings changed: ${JSON.stringify({ enable, candidates, maxTokens, temperature, topP, debounceMs, contextTokens })}`);
      }
    }),
  );
  own(
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      const prev = settings;
      settings = readSettings((m) => log('warn', m));
      if (prev.model !== settings.model) void reloadModel(settings);
    }),
  );

  own(vscode.commands.registerCommand('forkcast.showLog', () => log.channel.show(true)));
  own(
    vscode.commands.registerCommand('forkcast.toggle', async () => {
      const on = !settings.enable;
      await vscode.workspace.getConfiguration('forkcast').update('enable', on, vscode.ConfigurationTarget.Global);
      void vscode.window.setStatusBarMessage(`Forkcast inline completions ${on ? 'on' : 'off'}`, 2500);
    }),
  );
  own(vscode.commands.registerCommand('forkcast.selectModel', () => selectModelCommand(context.extensionPath, settings, log)));
  own(vscode.commands.registerCommand('forkcast.generate', () => generateCommand(client, settings, log, (p) => candidatesShown.fire(p), onTimings)));

  log('info', `Forkcast activating (VS Code ${vscode.version}, ${process.platform}-${process.arch}, runtime ${process.execPath}); workspace trusted: ${vscode.workspace.isTrusted}`);
  client.start(modelPath(settings)).catch((e) => {
    const msg = `Forkcast: ${(e as Error).message}`;
    failed.fire(msg);
    void vscode.window.showErrorMessage(msg, 'Select Model').then((a) => a && vscode.commands.executeCommand('forkcast.selectModel'));
  });

  return {
    engine: client,
    provider,
    settings: () => settings,
    onDidComplete: provider.onDidComplete,
    onDidShowCandidates: candidatesShown.event,
    onDidLoadModel: loaded.event,
    onDidFailModel: failed.event,
  };
}

export async function deactivate(): Promise<void> {
  await engine?.dispose();
  engine = undefined;
}
