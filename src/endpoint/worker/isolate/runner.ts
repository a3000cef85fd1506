// The runner: a function expression the host calls with the payload's JSON, wrapping the user's
// function. The host's script is this expression applied to (globalThis.__ferryDataRefs, (code)),
// on one line, so the function's code starts on line 1 of the script and line numbers in stacks
// match the user's code (isolated-vm-sandbox.ts runnerSource). Errors are described inside the
// isolate and cross as plain strings.
(function (withRefs: import('./types').WithRefs, fn: unknown) {
  'use strict';
  type RunnerAnswer = import('./types').RunnerAnswer;
  delete globalThis.__ferryDataRefs;
  const describe = (e: unknown): RunnerAnswer => {
    try {
      if (e !== null && typeof e === 'object' && typeof (e as Error).message === 'string') {
        const x = e as Error;
        return { kind: 'threw', name: String(x.name || 'Error'), message: x.message, stack: typeof x.stack === 'string' ? x.stack : undefined };
      }
      let message: string | undefined;
      try {
        message = typeof e === 'string' ? e : JSON.stringify(e);
      } catch {}
      return { kind: 'threw', name: 'ThrownValue', message: message === undefined ? String(e) : message };
    } catch {
      return { kind: 'threw', name: 'ThrownValue', message: 'a value that cannot be described' };
    }
  };
  return async function ferryRun(input: string): Promise<RunnerAnswer> {
    let value: unknown;
    try {
      if (typeof fn !== 'function') throw new TypeError('the function code does not evaluate to a function');
      const payload = JSON.parse(input);
      const args = withRefs(payload);
      value = await fn(...args);
    } catch (e) {
      return describe(e);
    }
    // Bytes (an ArrayBuffer, a typed array or a DataView) are the result as they are; a view on
    // part of a buffer is cut out, so only its own bytes are copied to the host.
    if (value instanceof ArrayBuffer) return { kind: 'bytes', data: new Uint8Array(value) };
    if (ArrayBuffer.isView(value)) {
      const whole = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength;
      return { kind: 'bytes', data: new Uint8Array(whole ? value.buffer : value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)) };
    }
    let json: string;
    try {
      json = JSON.stringify(value === undefined ? null : value);
    } catch (e) {
      const d = describe(e) as { name: string; message: string };
      return { kind: 'unserializable', name: d.name, message: d.message };
    }
    if (typeof json !== 'string') return { kind: 'unserializable', name: 'TypeError', message: 'a ' + typeof value + ' has no JSON form' };
    return { kind: 'ok', json };
  };
});
