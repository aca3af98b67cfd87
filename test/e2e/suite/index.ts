// Extension-host test entry, as @vscode/test-electron (and VS Code's --extensionTestsPath) expect:
// a module exporting run(), which resolves when every test passed and rejects otherwise.
// Bundled by scripts/e2e-build.sh to out/test/suite.js; mocha stays external (loaded from
// node_modules beside the extension under development).
import Mocha from 'mocha';
import { defineTests } from './extension.test';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'tdd', timeout: 120_000, color: false, reporter: ConsoleReporter as unknown as string });
  // Tests are defined by calling the tdd globals (suite/test) that pre-require installs.
  mocha.suite.emit('pre-require', globalThis, 'forkcast-extension-suite', mocha);
  defineTests();
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures ? reject(new Error(`${failures} extension-host test(s) failed`)) : resolve()));
  });
}

/** Reports through console.log: in a remote extension host that is what reaches the client
 *  (the browser console, printed by test/e2e/host.ts); stdout may go nowhere. */
class ConsoleReporter {
  constructor(runner: Mocha.Runner) {
    const t0 = Date.now();
    let passed = 0;
    let failed = 0;
    runner.on('suite', (s: Mocha.Suite) => s.title && console.log(`[suite] ${s.title}`));
    runner.on('pass', (t: Mocha.Test) => { passed++; console.log(`[pass] ${t.fullTitle()} (${t.duration} ms)`); });
    runner.on('fail', (t: Mocha.Test, err: Error) => { failed++; console.log(`[FAIL] ${t.fullTitle()}: ${err.stack ?? err.message}`); });
    runner.on('end', () => console.log(`[done] ${passed} passed, ${failed} failed in ${Date.now() - t0} ms`));
  }
}
