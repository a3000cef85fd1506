// Installs `console` from the host callback, then removes the callback from the global object so
// the function cannot call it directly. Formatting happens here so only strings cross to the host.
(function () {
  'use strict';
  const write = globalThis.__ferryWrite!;
  delete globalThis.__ferryWrite;
  let full = false;
  const format = (v: unknown): string => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return String(v.stack || v);
    try {
      const j = JSON.stringify(v);
      if (j !== undefined) return j;
    } catch {}
    try {
      return String(v);
    } catch {
      return Object.prototype.toString.call(v);
    }
  };
  const level = (prefix: string) => function (...args: unknown[]): void {
    if (full) return;
    full = write(prefix + args.map(format).join(' ') + '\n');
  };
  globalThis.console = Object.freeze({
    log: level(''), info: level(''), debug: level(''), warn: level('WARN: '), error: level('ERROR: '),
  });
})();
