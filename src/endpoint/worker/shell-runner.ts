// Runs shell functions (`runtime: 'shell'`): renders the command template, runs it with /bin/sh in
// its own process group (stdin empty) under the wall-time limit, and answers Globus Compute's
// ShellResult shape `{cmd, stdout, stderr, returncode}` behind the Sandbox port, so the worker
// loop treats it like the JS sandbox.

import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { LIMITS, type Json, type Payload } from '../../protocol/api';
import { taskException, type TaskException } from '../../protocol/errors';
import type { FunctionSpec } from '../../protocol/wire';
import { OutputTail, tailBytes } from './output-tail';
import { shellEnvironment } from './shell-environment';
import { successFromJson, type Sandbox, type SandboxOutcome, type SandboxRunOptions } from './sandbox';
import { renderShellCommand, ShellTemplateError } from '../../functions/shell-template';

export interface ShellRunnerOptions {
  /** Lines of stdout and of stderr returned: the last N of each (WorkerLimits.shell_output_lines). */
  outputLines?: number;
  /**
   * Bytes kept of each stream however few lines: one line can be endless. Two streams at the
   * default stay well under the inline result limit.
   */
  maxOutputBytes?: number;
  /** A result whose JSON is larger (a long command line) goes to the agent as a JSON body. */
  maxInlineResultBytes?: number;
  /**
   * Where commands run. Default: the worker's own working directory (the manager's, which the
   * provider sets for the block), so a command's relative paths and output files land where the
   * endpoint owner expects, and stay after the task; a task that wants a scratch directory of its
   * own makes one (`cd "$(mktemp -d)" && …`).
   */
  cwd?: string;
  /**
   * The commands' whole environment; default shellEnvironment(process.env): PATH, HOME and LANG
   * only, so no secret of the worker's environment reaches a command.
   */
  env?: Readonly<Record<string, string>>;
  /**
   * After the command exits (or is killed), how long its output may still drain before the pipes
   * are cut and the task answered: a process that left the group (setsid) could otherwise hold
   * them open forever, and a killed one stuck in I/O on a hung file system could never exit.
   */
  drainGraceMs?: number;
}

const SHELL = '/bin/sh';

export class ShellRunner implements Sandbox {
  private readonly running = new Set<ChildProcess>();
  private tail: Promise<unknown> = Promise.resolve();
  private readonly outputLines: number;
  private readonly maxOutputBytes: number;
  private readonly maxInlineResultBytes: number;
  private readonly env: Readonly<Record<string, string>>;

  constructor(private readonly options: ShellRunnerOptions = {}) {
    this.env = options.env ?? shellEnvironment(process.env);
    this.outputLines = options.outputLines ?? 1000;
    this.maxInlineResultBytes = options.maxInlineResultBytes ?? LIMITS.maxInlineResultBytes;
    this.maxOutputBytes = options.maxOutputBytes ?? Math.floor(this.maxInlineResultBytes / 4);
  }

  run(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome> {
    const outcome = this.tail.then(() => this.runNow(fn, payload, opts));
    this.tail = outcome.catch(() => undefined);
    return outcome;
  }

  /**
   * Kills every running command's process group, synchronously, so it can run from a process
   * 'exit' handler: a worker that goes away leaves no commands behind.
   */
  dispose(): void {
    for (const child of this.running) killGroup(child);
  }

  private async runNow(fn: FunctionSpec, payload: Payload, opts: SandboxRunOptions): Promise<SandboxOutcome> {
    if (fn.runtime !== 'shell') {
      return failed(taskException('INTERNAL', `The shell runner was handed a '${fn.runtime}' function`, { name: 'WorkerError' }));
    }
    let cmd: string;
    try {
      cmd = renderShellCommand(fn.code, payload.kwargs ?? {}, payload.args ?? []);
    } catch (err) {
      if (err instanceof ShellTemplateError) return failed(taskException('FERRY_FUNCTION_ERROR', err.message, { name: err.name }));
      throw err;
    }
    // memory_mb is not applied: an address-space ulimit breaks JVMs and Python; the batch job's
    // cgroup bounds what a command on a compute node may use.
    return this.execute(cmd, Math.max(1, Math.round(opts.timeout_s * 1000)), opts.timeout_s);
  }

  private execute(cmd: string, timeoutMs: number, timeout_s: number): Promise<SandboxOutcome> {
    return new Promise<SandboxOutcome>((resolve) => {
      const stdout = new OutputTail(this.outputLines, this.maxOutputBytes);
      const stderr = new OutputTail(this.outputLines, this.maxOutputBytes);
      let child: ChildProcess;
      try {
        // Detached makes the shell the leader of a new process group: the watchdog kills the
        // group, so `a & b`, pipelines and the shell's grandchildren all go with it.
        child = spawn(SHELL, ['-c', cmd], {
          cwd: this.options.cwd,
          env: this.env,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (err) {
        resolve(failed(spawnFailure(err, cmd, this.options.cwd)));
        return;
      }
      this.running.add(child);
      child.stdout!.setEncoding('utf8').on('data', (text: string) => stdout.write(text));
      child.stderr!.setEncoding('utf8').on('data', (text: string) => stderr.write(text));

      let exited = false;
      let timedOut = false;
      let returncode: number | null = null;
      let spawnError: unknown;
      let grace: NodeJS.Timeout | undefined;
      let done = false;

      // Cuts the pipes and answers after a grace: for output still draining once the command has
      // exited, and for a killed command that does not die (stuck in I/O on a hung file system).
      const cutLooseLater = (): void => {
        clearTimeout(grace);
        grace = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish();
        }, this.options.drainGraceMs ?? 1000);
      };

      const watchdog = setTimeout(() => {
        if (exited) return;
        timedOut = true;
        killGroup(child);
        cutLooseLater();
      }, timeoutMs);

      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(watchdog);
        clearTimeout(grace);
        this.running.delete(child);
        if (spawnError !== undefined) return resolve(failed(spawnFailure(spawnError, cmd, this.options.cwd)));
        if (timedOut) {
          return resolve(failed(taskException('FERRY_TASK_TIMEOUT', `The task exceeded its wall-time limit of ${timeout_s} s`), partialOutput(stdout.text(), stderr.text())));
        }
        const result = { cmd, stdout: stdout.text(), stderr: stderr.text(), returncode: returncode ?? 0 } satisfies Json;
        // A non-zero exit is still a success, as with Globus Compute's ShellFunction: the
        // caller reads returncode. Past the inline limit the result is stored as an object.
        resolve(successFromJson(JSON.stringify(result), '', this.maxInlineResultBytes));
      };

      child.on('error', (err) => {
        // Spawning failed (no pid), or a kill failed; only the first matters.
        if (child.pid === undefined) {
          spawnError = err;
          finish();
        }
      });
      child.on('exit', (code, signal) => {
        exited = true;
        // A signal ends the shell without a code: report it as a shell would ($? = 128 + N).
        returncode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
        // Whatever the command left running in the background goes with it.
        killGroup(child);
        cutLooseLater();
      });
      child.on('close', finish);
    });
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone.
  }
}

function spawnFailure(err: unknown, cmd: string, cwd: string | undefined): TaskException {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'E2BIG') {
    return taskException('FERRY_FUNCTION_ERROR', `The rendered command is ${Buffer.byteLength(cmd)} bytes, more than the system lets one command line carry; pass large values in a file or by reference`, { name: 'ShellCommandTooLong' });
  }
  return taskException('INTERNAL', `Could not start ${SHELL} in ${cwd ?? process.cwd()}: ${e instanceof Error ? e.message : String(err)}`, { name: 'ShellSpawnError' });
}

/** The end of what a command printed before it was stopped, for the failed task's stdout. */
function partialOutput(stdout: string, stderr: string): string {
  const text = stderr === '' ? stdout : `${stdout}${stdout === '' || stdout.endsWith('\n') ? '' : '\n'}[stderr]\n${stderr}`;
  return tailBytes(text, LIMITS.maxStdoutBytes);
}

function failed(exception: TaskException, stdout = ''): SandboxOutcome {
  return { status: 'failed', exception, stdout };
}
