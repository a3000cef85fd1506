// An endpoint's configuration: one YAML file, parsed once into a frozen, typed object. Errors name
// the field (`provider.max_workers_per_node: must be ≥ 1`) so an owner can fix the file.

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { FerryError } from '../../protocol/errors';
import { ProviderConfigSchema } from './provider-config';


export const EndpointConfigSchema = z
  .strictObject({
    display_name: z.string().max(256).optional(),
    provider: ProviderConfigSchema.default({
      type: 'local', init_blocks: 1, min_blocks: 0, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 2, max_idletime_s: 120,
    }),
    /** Memory limit of one task's sandbox (isolated-vm heap), MiB; for Python, its process's address space (RLIMIT_AS). */
    task_memory_mb: z.number().int().min(8).max(65536).default(256),
    /**
     * Let functions use WebAssembly. Off by default: isolated-vm counts memory through its
     * ArrayBuffer allocator, which WebAssembly.Memory bypasses, so only the worker's resident-memory
     * watchdog bounds what a module allocates.
     */
    allow_wasm: z.boolean().default(false),
    /** Wall-time limit of one task, seconds. */
    task_timeout_s: z.number().positive().max(7 * 24 * 3600).default(60),
    /**
     * Times a task is run again after a system failure took its execution (a lost worker, manager
     * or block, or the agent stopping under it, counted at its restart) before it fails with
     * FERRY_WORKER_LOST. A task that breaks its own worker is not retried.
     */
    max_retries_on_system_failure: z.number().int().min(0).max(100).default(2),
    /**
     * Functions this endpoint runs, checked by the agent as well as by the gateway (which has its
     * own list from registration); absent: any function its owner registers.
     */
    allowed_functions: z.array(z.string().regex(/^[0-9a-f-]{36}$/, 'must be a function UUID')).optional(),
    /** Run shell functions (command templates) on this endpoint's workers. */
    allow_shell_functions: z.boolean().default(false),
    /**
     * Environment variables shell functions' commands get besides PATH, HOME and LANG (taken from
     * the worker's own environment). Nothing else of the agent's or the job's environment reaches
     * a command: tokens and secrets there stay out of the tasks' reach.
     */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a variable name'), z.string().refine((v) => !v.includes('\0'), 'must not contain NUL')).default({}),
    /** Lines of output a shell function returns (the last N of stdout and of stderr). */
    shell_output_lines: z.number().int().min(1).max(100_000).default(1000),
    /**
     * Run Python functions (`runtime: "python"`). Off by default: Python runs as the endpoint's
     * user in a plain CPython process, with a wall-time limit, an address-space limit
     * (task_memory_mb) and the minimal environment shell commands get, but not sandboxed like
     * isolated-vm: a function can read and write whatever the endpoint's user can.
     */
    python: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** The interpreter: an absolute path (a virtual environment's bin/python3) or a name on PATH. */
        executable: z.string().min(1).refine((p) => !p.includes('\0'), 'must not contain NUL').default('python3'),
        /**
         * OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS of the Python processes. Each
         * BLAS thread reserves address space (~40 MB with OpenBLAS) under the task_memory_mb limit.
         */
        threads: z.number().int().min(1).max(1024).default(1),
      })
      .default({ enabled: false, executable: 'python3', threads: 1 }),
    /** Tasks the agent takes from the gateway ahead of its workers (flow-control credits). */
    prefetch_tasks: z.number().int().min(1).max(100_000).default(2000),
    /** Tasks a manager holds beyond one per worker. */
    manager_prefetch: z.number().int().min(0).max(100_000).default(256),
    /** Seconds between heartbeats (agent → gateway status, manager → agent); three missed = lost. */
    heartbeat_s: z.number().min(1).max(3600).default(5),
    /** Seconds without a heartbeat after which a manager counts as lost; default 3 × heartbeat_s. */
    heartbeat_threshold_s: z.number().min(1).max(86400).optional(),
    /** Seconds between scaling decisions. */
    strategy_period_s: z.number().min(1).max(3600).default(5),
    interchange: z
      .strictObject({
        /** Address managers dial: an IP or hostname of the login node. */
        address: z.string().min(1).default('127.0.0.1'),
        /** 0 picks a free port. */
        port: z.number().int().min(0).max(65535).default(0),
      })
      .default({ address: '127.0.0.1', port: 0 }),
    /** Bytes of object chunks (1 MiB each) the agent's site cache keeps on disk under state_dir/cache; default 1 GiB. */
    cache_max_bytes: z.number().int().min(1024 * 1024).default(1024 * 1024 * 1024),
    /**
     * Directories whose files tasks may read in place through `{"$ref": "file:///…"}` (and that
     * `locations` of an object reference may point into). A path is readable when both the path as
     * written and its real path (symbolic links resolved) lie inside one of these; default: none.
     */
    data_roots: z
      .array(
        z
          .string()
          .regex(/^\//, 'must be an absolute path')
          .refine((p) => !p.split('/').includes('..'), 'must not contain .. segments'),
      )
      .default([]),
    /**
     * Read files under data_roots that have more than one hard link. Off by default: a hard link
     * in a root to a file elsewhere passes every path check, so such files are refused.
     */
    allow_hard_links: z.boolean().default(false),
    /**
     * fsync the journal before acknowledging tasks and sending results (batched: one per flush of
     * frames), so that what the gateway was told survives a power loss of the login node. Off, it
     * survives the agent's death only: for a state_dir on a file system where fsync is very slow.
     */
    journal_fsync: z.boolean().default(true),
    /** Directory for the journal and block secrets; default: the endpoint's folder under FERRY_HOME. */
    state_dir: z.string().optional(),
  })
  .superRefine((cfg, ctx) => {
    const p = cfg.provider;
    if (p.max_blocks < p.min_blocks) {
      ctx.addIssue({ code: 'custom', path: ['provider', 'max_blocks'], message: `must be ≥ min_blocks (${p.min_blocks})` });
    }
    if (p.init_blocks > p.max_blocks) {
      ctx.addIssue({ code: 'custom', path: ['provider', 'init_blocks'], message: `must be ≤ max_blocks (${p.max_blocks})` });
    }
  });

export type EndpointConfig = Readonly<z.infer<typeof EndpointConfigSchema>>;

/** Renders zod issues as `field.path: message` lines. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${issue.message}`)
    .join('\n');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export function parseEndpointConfig(value: unknown, source = 'config'): EndpointConfig {
  const result = EndpointConfigSchema.safeParse(value ?? {});
  if (!result.success) {
    throw new FerryError('CONFIG_INVALID', `${source}:\n${describeIssues(result.error)}`);
  }
  return deepFreeze(result.data);
}

export function loadEndpointConfig(path: string): EndpointConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new FerryError('CONFIG_INVALID', `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new FerryError('CONFIG_INVALID', `${path}: not valid YAML: ${(err as Error).message}`);
  }
  return parseEndpointConfig(doc, path);
}
