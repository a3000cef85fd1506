// The endpoint agent: the long-running process on the login node. It holds one socket to the
// gateway, journals every task before acknowledging it, runs an interchange that managers dial,
// keeps its blocks alive through a provider, and sends results back in batches, journaled until
// the gateway acknowledges them (a result too large to go inline is first stored as an object of the
// owner: result-objects.ts). Acks, held ids and results leave only after one fsync of the journal
// covering them (group commit: outgoing-frames.ts): what the gateway is told survives a power loss.
// Restarted after a crash, it replays its journal: nothing is lost.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusReport } from '../../protocol/api';
import { FRAME_BUDGET_BYTES, PROTOCOL_VERSION, chunkBySize, type GatewayFrame, type TaskMessage, type TaskResult } from '../../protocol/wire';
import { traceHop } from '../../protocol/trace';
import { taskException, type FerryError } from '../../protocol/errors';
import type { ResultBody, WorkerTaskResult } from '../../protocol/interchange';
import { lineageFactsOf } from '../../provenance/lineage-items';
import type { EndpointConfig } from '../config/endpoint-config';
import { Interchange } from '../interchange/interchange';
import type { Logger } from '../log';
import { writeConnectFile } from '../manager/connect-file';
import type { Provider } from '../providers/provider';
import { AccessTokens } from './access-tokens';
import { BlockScaler } from './block-scaler';
import { DataSources, SiteFiles } from './data-sources';
import { GatewayLink } from './gateway-link';
import { resolveInterchangeAddress } from './interchange-address';
import { Journal } from './journal';
import { ObjectCache } from './object-cache';
import { OutgoingFrames } from './outgoing-frames';
import { ResultNotStoredError, ResultObjects } from './result-objects';

export const AGENT_VERSION = '0.1.0';

export interface EndpointCredentials {
  endpoint_name: string;
  endpoint_id: string;
  gateway_url: string;
  connection_url: string;
  token: string;
}

export interface AgentOptions {
  config: EndpointConfig;
  credentials: EndpointCredentials;
  stateDir: string;
  provider: Provider;
  log: Logger;
  /** Called when the gateway refuses the agent for good. */
  onFatal?: (error: FerryError) => void;
  /**
   * Tests only (env FERRY_TEST_AGENT_EXIT_ON_FUNCTION): the agent exits, as if it had crashed,
   * right after journaling the dispatch of a task of this function.
   */
  exitOnDispatchOf?: string;
}

/** The exit code of the test-only crash (exitOnDispatchOf). */
export const TEST_CRASH_EXIT_CODE = 86;

/** Why an execution counts as lost when the agent finds it unfinished in its journal. */
const AGENT_STOPPED_REASON = 'the agent stopped while the execution was in flight';

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class Agent {
  private readonly journal: Journal;
  private readonly interchange: Interchange;
  private readonly link: GatewayLink;
  /** Short-lived access tokens exchanged for the endpoint's secret (credentials.token). */
  private readonly accessTokens: AccessTokens;
  private readonly scaler: BlockScaler;
  /** The site cache workers read data by reference through. */
  private readonly objects: ObjectCache;
  /** Where reads are served from: the site's files (data_roots), else the cache → the gateway. */
  private readonly sources: DataSources;
  /** Results sent in parts: spooled to disk, then stored as objects of the owner. */
  private readonly resultObjects: ResultObjects;
  private stopping = false;
  private interchangePort = 0;
  private readonly outgoing: OutgoingFrames;
  private timers: NodeJS.Timeout[] = [];
  private blockSeq = 0;
  private readonly address: string;

  constructor(private readonly opts: AgentOptions) {
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    this.journal = new Journal(join(opts.stateDir, 'journal'), { fsync: opts.config.journal_fsync });
    const log = opts.log;
    this.address = resolveInterchangeAddress(opts.config.interchange.address);
    this.interchange = new Interchange({
      address: this.address,
      port: opts.config.interchange.port,
      heartbeat_s: opts.config.heartbeat_s,
      ...(opts.config.heartbeat_threshold_s ? { heartbeat_threshold_s: opts.config.heartbeat_threshold_s } : {}),
      log: log.child({ component: 'interchange' }),
      hooks: {
        functionSpec: (uuid) => this.journal.functions.get(uuid),
        beforeDispatch: (ids) => {
          this.journal.markDispatched(ids);
          if (opts.exitOnDispatchOf !== undefined && ids.some((id) => this.journal.tasks.get(id)?.task.function_uuid === opts.exitOnDispatchOf)) {
            log.error('test fault: exiting on the dispatch of a task', { function_uuid: opts.exitOnDispatchOf });
            process.exit(TEST_CRASH_EXIT_CODE);
          }
          return ids.map((id) => this.journal.tasks.get(id)?.attempts ?? 1);
        },
        onStarted: (ids) => this.outgoing.running(ids),
        onResults: (results) => this.onResults(results),
        onResultPart: (taskId, attempt, offset, data) => this.resultObjects.part(taskId, attempt, offset, data),
        onLost: (tasks, reason) => this.onLost(tasks, reason),
        onManagersChanged: () => this.sendStatus(),
        onRead: async (ref, start, end) => {
          const { data, size, sha256, source } = await this.sources.read(ref, start, end);
          const s = this.objects.stats();
          log.debug('object read', { ref: ref.slice(0, 300), start, end, source, cache_hits: s.hits, cache_misses: s.misses, cache_fetches: s.fetches, cache_bytes: s.bytes });
          return { data, size, sha256 };
        },
      },
    });
    this.accessTokens = new AccessTokens({
      gatewayUrl: opts.credentials.gateway_url,
      endpointId: opts.credentials.endpoint_id,
      secret: opts.credentials.token,
      log: log.child({ component: 'access-tokens' }),
      onFatal: (error) => opts.onFatal?.(error),
    });
    this.resultObjects = new ResultObjects({
      dir: join(opts.stateDir, 'results'),
      gatewayUrl: opts.credentials.gateway_url,
      token: () => this.accessTokens.current(),
      log: log.child({ component: 'result-objects' }),
    });
    this.objects = new ObjectCache({
      dir: join(opts.stateDir, 'cache'),
      gatewayUrl: opts.credentials.gateway_url,
      token: () => this.accessTokens.current(),
      maxBytes: opts.config.cache_max_bytes,
      log: log.child({ component: 'object-cache' }),
    });
    this.sources = new DataSources({
      files: new SiteFiles({ roots: opts.config.data_roots, allowHardLinks: opts.config.allow_hard_links, log: log.child({ component: 'data-sources' }) }),
      objects: this.objects,
      log: log.child({ component: 'data-sources' }),
    });
    this.link = new GatewayLink(opts.credentials.connection_url, () => this.accessTokens.current(), {
      onOpen: () => this.hello(),
      onFrame: (frame) => this.onFrame(frame),
      onClose: () => this.outgoing.closed(),
      onRefused: (error) => {
        this.accessTokens.stop();
        opts.onFatal?.(error);
      },
      onTokenExpired: () => this.accessTokens.renewNow(),
    }, log.child({ component: 'gateway-link' }), (opts.config.heartbeat_threshold_s ?? opts.config.heartbeat_s * 3) * 1000);
    this.outgoing = new OutgoingFrames({ send: (frame) => this.link.send(frame), durable: () => this.journal.durable(), log: opts.log });
    this.scaler = new BlockScaler(opts.config.provider, {
      provider: opts.provider,
      launch: () => this.launchBlock(),
      retire: (blockId) => this.interchange.forgetBlock(blockId),
      load: () => {
        const s = this.interchange.stats();
        return { outstanding: this.journal.tasks.size, queued: s.queued, busyBlocks: s.busyBlocks };
      },
      log: log.child({ component: 'strategy' }),
    });
  }

  async start(): Promise<void> {
    this.interchangePort = await this.interchange.start();
    this.opts.log.info('interchange listening', { address: this.address, port: this.interchangePort });
    // Executions the last agent left unfinished count as lost (each death of the agent under a
    // task is counted once, from the dispatch mark journaled before it): a task that keeps killing
    // the agent fails FERRY_WORKER_LOST after max_retries_on_system_failure restarts.
    const unfinished = this.journal.unfinishedExecutions();
    const unfinishedSet = new Set(unfinished);
    const replay = [...this.journal.tasks.values()].map((h) => h.task).filter((t) => !unfinishedSet.has(t));
    if (replay.length || unfinished.length || this.journal.results.size || this.journal.skippedLines) {
      this.opts.log.info('replaying journal', { tasks: replay.length + unfinished.length, unfinished_executions: unfinished.length, unacknowledged_results: this.journal.results.size, skipped_lines: this.journal.skippedLines });
    }
    this.interchange.submit(replay);
    if (unfinished.length) this.onLost(unfinished, AGENT_STOPPED_REASON);
    await this.scaler.init();
    // The first connect needs an access token: the secret itself does not open the socket.
    try {
      await this.accessTokens.start();
    } catch (err) {
      // The secret was refused (revoked, unknown): leave no blocks or listener behind.
      await this.stop();
      throw err;
    }
    this.link.connect();
    this.timers.push(setInterval(() => this.sendStatus(), this.opts.config.heartbeat_s * 1000));
    this.timers.push(setInterval(() => void this.scaler.tick(), this.opts.config.strategy_period_s * 1000));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.resultObjects.stop();
    for (const t of this.timers) clearInterval(t);
    this.outgoing.stop();
    this.accessTokens.stop();
    this.link.close();
    await this.scaler.cancelAll();
    await this.interchange.stop();
    this.journal.close();
  }

  status(): StatusReport {
    const s = this.interchange.stats();
    return {
      total_workers: s.total_workers,
      idle_workers: s.idle_workers,
      pending_tasks: s.queued,
      outstanding_tasks: this.journal.tasks.size,
      managers: s.managers,
      blocks: this.scaler.blocks.size,
    };
  }

  private async launchBlock(): Promise<{ id: string; jobId: string }> {
    const id = `block-${++this.blockSeq}-${randomBytes(4).toString('hex')}`;
    const dir = join(this.opts.stateDir, 'blocks', id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const secret = randomBytes(32).toString('hex');
    const connectFile = join(dir, 'connect.json');
    const { config } = this.opts;
    writeConnectFile(connectFile, {
      address: this.address, port: this.interchangePort, secret, block_id: id,
      workers: config.provider.max_workers_per_node, prefetch: config.manager_prefetch,
      memory_mb: config.task_memory_mb, timeout_s: config.task_timeout_s, allow_wasm: config.allow_wasm,
      allow_shell_functions: config.allow_shell_functions, shell_output_lines: config.shell_output_lines, shell_env: config.env,
      ...(config.python.enabled ? { python: { executable: config.python.executable, threads: config.python.threads } } : {}),
    });
    this.interchange.allowBlock(id, secret);
    const jobId = await this.opts.provider.submit({ blockId: id, nodes: config.provider.nodes_per_block, connectFile, dir });
    return { id, jobId };
  }

  private hello(): void {
    // The held frames promise what the journal holds (and replace any ack not sent on the last socket).
    this.journal.sync();
    this.outgoing.connected();
    const held = chunkBySize(this.journal.heldIds(), FRAME_BUDGET_BYTES);
    this.link.send({ type: 'hello', protocol_version: PROTOCOL_VERSION, agent_version: AGENT_VERSION, held_frames: held.length });
    for (const task_ids of held) this.link.send({ type: 'held', task_ids });
  }

  private onFrame(frame: GatewayFrame): void {
    switch (frame.type) {
      case 'welcome': {
        // Credits start afresh with each connection: what the agent already holds counts against them.
        const credit = Math.max(0, this.opts.config.prefetch_tasks - this.journal.tasks.size);
        this.link.send({ type: 'credit', n: credit });
        const unacknowledged = [...this.journal.results.values()];
        if (unacknowledged.length > 0) this.opts.log.info('re-sending unacknowledged results', { count: unacknowledged.length });
        this.outgoing.welcome(unacknowledged);
        this.sendStatus();
        break;
      }
      case 'tasks': {
        for (const t of frame.tasks) traceHop(t.trace, 'agent.received');
        const fresh = this.journal.addTasks(frame.tasks, frame.functions);
        // Acknowledged in the next flush, after the fsync: the tasks start meanwhile (one lost to a
        // power loss before its ack is delivered again, as any task not acknowledged).
        // A task delivered twice used a credit but adds no work: give the credit back.
        this.outgoing.received(frame.tasks.map((t) => t.task_id), frame.tasks.length - fresh.length);
        const allowed = this.opts.config.allowed_functions;
        const refused = allowed ? fresh.filter((t) => !allowed.includes(t.function_uuid)) : [];
        if (refused.length) this.refuse(refused);
        this.interchange.submit(refused.length ? fresh.filter((t) => !refused.includes(t)) : fresh);
        this.opts.log.debug('tasks received', { count: frame.tasks.length, fresh: fresh.length });
        break;
      }
      case 'cancel': {
        const held = frame.task_ids.filter((id) => this.journal.tasks.has(id));
        this.journal.drop(held);
        this.interchange.cancel(held);
        for (const id of held) this.resultObjects.discard(id);
        this.outgoing.credit(held.length);
        break;
      }
      case 'results_ack':
        this.journal.acknowledge(frame.task_ids);
        this.outgoing.resultsAcked(frame.task_ids);
        break;
      case 'refuse':
        break; // handled by the link
    }
  }

  /** Results from the interchange: inline ones go on at once, those sent in parts are stored first. */
  private onResults(results: WorkerTaskResult[]): void {
    const inline: TaskResult[] = [];
    for (const { result_body, ...result } of results) {
      traceHop(result.trace, 'agent.results');
      if (result_body === undefined) inline.push(result);
      else void this.storeResult(result, result_body);
    }
    if (inline.length) this.acceptResults(inline);
  }

  /**
   * Stores a result sent in parts as an object of the endpoint's owner, then journals and reports
   * its reference like any result: the upload comes first, so the journal only ever holds small
   * references. An agent that stops (or crashes) before that loses only the execution: the journal
   * still holds the task, which runs again after the restart.
   */
  private async storeResult(result: TaskResult, body: ResultBody): Promise<void> {
    const attempt = result.execution?.attempt ?? 1;
    if (!this.journal.tasks.has(result.task_id)) {
      // Cancelled meanwhile, or another execution's result came first: nobody needs these bytes.
      this.resultObjects.discard(result.task_id);
      return;
    }
    let stored: TaskResult;
    try {
      stored = { ...result, result_object: await this.resultObjects.store(result.task_id, attempt, body) };
    } catch (err) {
      if (this.stopping) return;
      const message = err instanceof ResultNotStoredError ? err.message : `could not store the result: ${String(err)}`;
      this.opts.log.warn('result not stored', { task_id: result.task_id, size: body.size, error: message });
      stored = {
        task_id: result.task_id, status: 'failed',
        exception: taskException('FERRY_RESULT_NOT_STORED', message),
        ...(result.stdout !== undefined ? { stdout: result.stdout } : {}),
        ...(result.execution ? { execution: result.execution } : {}),
      };
    }
    this.acceptResults([stored]);
  }

  private acceptResults(results: TaskResult[]): void {
    // Only the first result of a held task is journaled and frees a credit. A second execution's
    // result (a lost worker's task that had finished after all) or a cancelled task's late result
    // still goes to the gateway, best effort, which records it as an extra attempt.
    // The executions lost before this one go with the result, into the gateway's record of the task.
    // So do the task's lineage facts: its payload and result named (large values hashed) here, where
    // both are, instead of on the gateway's one thread.
    const withHistory = results.map((r) => {
      const held = this.journal.tasks.get(r.task_id);
      if (!held) return r;
      const lineage = lineageFactsOf(held.task.payload, r, sha256Hex);
      return { ...r, ...(held.lostAttempts.length > 0 ? { lost_attempts: held.lostAttempts } : {}), ...(lineage ? { lineage } : {}) };
    });
    const fresh = withHistory.filter((r) => this.journal.tasks.has(r.task_id));
    this.journal.addResults(fresh);
    this.outgoing.results(withHistory, fresh.length);
  }

  /** Fails tasks of functions outside the config's allowed_functions without running them. */
  private refuse(tasks: TaskMessage[]): void {
    const now = Date.now() / 1000;
    this.opts.log.warn('tasks refused: function not in allowed_functions', { count: tasks.length, function_uuid: tasks[0]!.function_uuid });
    this.acceptResults(tasks.map((t) => ({
      task_id: t.task_id, status: 'failed',
      exception: taskException('FUNCTION_NOT_PERMITTED', `function ${t.function_uuid} is not in this endpoint's allowed_functions`),
      execution: { attempt: 1, started_at: now, ended_at: now, host: 'agent', worker_pid: process.pid },
    })));
  }

  /** Retries executions lost to system failures, up to max_retries_on_system_failure each. */
  private onLost(tasks: TaskMessage[], reason: string): void {
    // Parts of a result that will not come whole.
    for (const t of tasks) this.resultObjects.discard(t.task_id);
    const held = tasks.filter((t) => this.journal.tasks.has(t.task_id));
    const now = Date.now() / 1000;
    this.journal.markLost(held.map((t) => t.task_id), reason, now);
    const max = this.opts.config.max_retries_on_system_failure;
    const retry: TaskMessage[] = [];
    const failed: TaskResult[] = [];
    for (const t of held) {
      const h = this.journal.tasks.get(t.task_id)!;
      if (h.lostAttempts.length <= max) retry.push(t);
      else {
        failed.push({
          task_id: t.task_id, status: 'failed',
          exception: taskException('FERRY_WORKER_LOST', `the task's execution was lost ${h.lostAttempts.length} times (last: ${reason}); max_retries_on_system_failure is ${max}`),
          execution: { attempt: h.attempts, started_at: now, ended_at: now, host: 'agent', worker_pid: process.pid },
        });
      }
    }
    this.opts.log.warn('executions lost', { reason, retried: retry.length, failed: failed.length, task_ids: held.slice(0, 20).map((t) => t.task_id) });
    this.interchange.requeue(retry);
    if (failed.length) this.acceptResults(failed);
  }

  private sendStatus(): void {
    if (this.outgoing.isWelcomed) this.link.send({ type: 'status', report: this.status() });
  }
}
