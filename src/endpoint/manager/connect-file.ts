// What a manager needs to reach its agent, written by the agent into a 0600 file per block and
// passed to the manager by path: never on a command line or in a job's environment, which
// schedulers display to other users.

import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

export const ConnectInfo = z.object({
  address: z.string(),
  port: z.number().int(),
  secret: z.string(),
  block_id: z.string(),
  workers: z.number().int().positive(),
  prefetch: z.number().int().nonnegative(),
  memory_mb: z.number().positive(),
  timeout_s: z.number().positive(),
  allow_wasm: z.boolean().default(false),
  allow_shell_functions: z.boolean().default(false),
  shell_output_lines: z.number().int().positive().default(1000),
  /** The endpoint config's `env`: what shell commands get besides PATH, HOME and LANG. */
  shell_env: z.record(z.string(), z.string()).default({}),
  /** The endpoint config's `python` when enabled; absent: workers refuse Python functions. */
  python: z.object({ executable: z.string(), threads: z.number().int().positive() }).optional(),
});
export type ConnectInfo = z.infer<typeof ConnectInfo>;

export function writeConnectFile(path: string, info: z.input<typeof ConnectInfo>): void {
  writeFileSync(path, JSON.stringify(info), { mode: 0o600 });
}

export function readConnectFile(path: string): ConnectInfo {
  return ConnectInfo.parse(JSON.parse(readFileSync(path, 'utf8')));
}
