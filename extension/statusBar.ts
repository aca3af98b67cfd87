// One status bar item: model name, engine state, last latency and decode speed. Click → the log.
import * as vscode from 'vscode';
import type { EngineState } from './engineClient';

const ICON: Record<EngineState | 'disabled', string> = {
  starting: '$(sync~spin)',
  loading: '$(sync~spin)',
  ready: '$(sparkle)',
  busy: '$(loading~spin)',
  error: '$(error)',
  stopped: '$(circle-slash)',
  disabled: '$(circle-slash)',
};

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: EngineState = 'starting';
  private detail = '';
  private model = '';
  private lastLatency?: { ms: number; tokPerS: number; reused: number; prompt: number };
  private enabled = true;

  constructor() {
    this.item = vscode.window.createStatusBarItem('forkcast.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Forkcast';
    this.item.command = 'forkcast.showLog';
    this.render();
    this.item.show();
  }

  setState(state: EngineState, detail = '') {
    this.state = state;
    this.detail = detail;
    this.render();
  }
  setModel(name: string) { this.model = name; this.render(); }
  setEnabled(on: boolean) { this.enabled = on; this.render(); }
  setLatency(ms: number, tokPerS: number, reused: number, prompt: number) {
    this.lastLatency = { ms, tokPerS, reused, prompt };
    this.render();
  }

  private render() {
    const shown: EngineState | 'disabled' = this.enabled ? this.state : 'disabled';
    const lat = this.lastLatency ? ` ${Math.round(this.lastLatency.ms)} ms · ${this.lastLatency.tokPerS.toFixed(0)} tok/s` : '';
    const model = this.model || '…';
    // The text says the state in words too: screen readers and the e2e test read it.
    const word = shown === 'ready' ? '' : ` ${shown}`;
    this.item.text = `${ICON[shown]} Forkcast${word}: ${model}${shown === 'ready' || shown === 'busy' ? lat : ''}`;
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**Forkcast** — ${shown}${this.detail ? `: ${escape(this.detail)}` : ''}\n\n`);
    md.appendMarkdown(`Model: ${escape(this.model || 'none loaded')}\n\n`);
    if (this.lastLatency) {
      const l = this.lastLatency;
      md.appendMarkdown(`Last completion: ${Math.round(l.ms)} ms, ${l.tokPerS.toFixed(1)} tokens/s, prompt ${l.prompt} tokens (${l.reused} reused)\n\n`);
    }
    md.appendMarkdown('Click to show the log.');
    this.item.tooltip = md;
    this.item.accessibilityInformation = { label: `Forkcast ${shown}: ${this.model}` };
    this.item.backgroundColor = shown === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose() { this.item.dispose(); }
}

function escape(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}
