// The Forkcast output channel ("Forkcast: Show Log"): requests, timings, every early return of the
// completion path with its reason, and what the engine reports.
import * as vscode from 'vscode';

export type Level = 'info' | 'warn' | 'error' | 'debug';
export interface Log {
  (level: Level, msg: string): void;
  channel: vscode.LogOutputChannel;
}

export function createLog(): Log {
  const channel = vscode.window.createOutputChannel('Forkcast', { log: true });
  const log = ((level: Level, msg: string) => {
    if (level === 'error') channel.error(msg);
    else if (level === 'warn') channel.warn(msg);
    else if (level === 'debug') channel.debug(msg);
    else channel.info(msg);
  }) as Log;
  log.channel = channel;
  return log;
}
