// A test double of the Sandbox port: runs plain JS closures looked up by function_uuid, with no
// isolation and no limits. For unit tests of the code that drives a sandbox, never for real tasks.

import type { Json, Payload } from '../../src/protocol/api';
import { taskException } from '../../src/protocol/errors';
import type { FunctionSpec } from '../../src/protocol/wire';
import { successFromBytes, successFromJson, type Sandbox, type SandboxOutcome, type SandboxRunOptions } from '../../src/endpoint/worker/sandbox';

/** A closure standing in for a function; `log` plays the part of console output. A Uint8Array is a bytes result. */
export type FakeFunction = (args: Json[], kwargs: Record<string, Json> | undefined, log: (line: string) => void) => Json | Uint8Array | Promise<Json | Uint8Array>;

export class FakeSandbox implements Sandbox {
  /** Every call made, in order, for assertions. */
  readonly calls: Array<{ function_uuid: string; payload: Payload; opts: SandboxRunOptions }> = [];
  disposed = false;

  constructor(private readonly functions: ReadonlyMap<string, FakeFunction> | Record<string, FakeFunction>) {}

  async run(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome> {
    this.calls.push({ function_uuid: fn.function_uuid, payload, opts });
    const impl = this.functions instanceof Map ? this.functions.get(fn.function_uuid) : (this.functions as Record<string, FakeFunction>)[fn.function_uuid];
    let stdout = '';
    const log = (line: string) => {
      stdout += line + '\n';
    };
    if (!impl) {
      return { status: 'failed', exception: taskException('FERRY_FUNCTION_ERROR', `FakeSandbox has no closure for ${fn.function_uuid}`, { name: 'ReferenceError' }), stdout };
    }
    try {
      const result = await impl(payload.args, payload.kwargs, log);
      if (result instanceof Uint8Array) return successFromBytes(result, stdout);
      return successFromJson(JSON.stringify(result === undefined ? null : result), stdout);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      return { status: 'failed', exception: taskException('FERRY_FUNCTION_ERROR', e.message, { name: e.name, stack: e.stack }), stdout };
    }
  }

  dispose(): void {
    this.disposed = true;
  }
}
