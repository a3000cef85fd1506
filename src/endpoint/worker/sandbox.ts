// The Sandbox port: where a worker runs one function call. Adapters: isolated-vm (real) and a
// fake for tests of the code around it. Failures come back as outcomes, never as rejections.

import type { Json, Payload } from '../../protocol/api';
import type { TaskException } from '../../protocol/errors';
import type { FunctionSpec } from '../../protocol/wire';

export interface SandboxRunOptions {
  timeout_s: number;
  memory_mb: number;
}

export type SandboxOutcome =
  | { status: 'success'; result: Json; stdout: string }
  | { status: 'failed'; exception: TaskException; stdout: string };

export interface Sandbox {
  /** Runs one call. Calls on one sandbox run one at a time, in the order they were made. */
  run(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome>;
  dispose(): void;
}
