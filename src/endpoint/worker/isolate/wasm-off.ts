// Where the endpoint does not allow WebAssembly (isolated-vm cannot count its memory), the
// namespace is replaced before user code runs by one whose every function throws a clear error;
// it stays an object so feature tests (`typeof WebAssembly`) do not throw. Nothing else in V8
// reaches the original namespace.
(function () {
  'use strict';
  const refuse = function (): never {
    const e = new Error('WebAssembly is disabled on this endpoint (allow_wasm is off in its config)');
    e.name = 'WebAssemblyDisabled';
    throw e;
  };
  const namespace = (globalThis as unknown as { WebAssembly: Record<string, unknown> }).WebAssembly;
  const off: Record<string, unknown> = {};
  for (const k of Object.getOwnPropertyNames(namespace)) if (typeof namespace[k] === 'function') off[k] = refuse;
  Object.defineProperty(globalThis, 'WebAssembly', { value: Object.freeze(off), writable: false, enumerable: false, configurable: false });
})();
