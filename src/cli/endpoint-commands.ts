// `ferry endpoint …`: what an endpoint owner runs on the login node, after Globus Compute's
// `globus-compute-endpoint configure/start/stop/list/delete`. Local state lives in
// $FERRY_HOME/endpoints/NAME/ (config.yaml, credentials.json, endpoint.pid, endpoint.log).

import { Command, InvalidArgumentError, Option } from 'commander';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { configFilePath, credentialsPath, endpointDir, ferryHome, writeCredentials } from '../endpoint/ferry-home';
import { createLogger } from '../endpoint/log';
import { resolveConfigPath, startEndpoint } from '../endpoint/main';
import type { EndpointDoc, EndpointStatus } from '../protocol/api';
import { FerryApiError } from '../sdk/errors';
import { CliError, describeError, fail } from './cli-error';
import { action, out, withAccess } from './command-kit';
import { logs } from './endpoint-logs';
import { PROVIDER_TYPES, renderEndpointTemplate, type ProviderType } from './endpoint-templates';
import { localEndpoints, requireLocal } from './local-endpoints';
import { claimPidFile, explainExit, runningPid, startDetached, stopAgent } from './endpoint-process';
import { freshGatewayAccess } from './oidc-login';
import { gatewayClient, type AccessFlags } from './user-config';

const DEFAULT_START_TIMEOUT_S = 60;
const DEFAULT_STOP_TIMEOUT_S = 30;

function endpointName(value: string): string {
  // The gateway's rule for endpoint_name; it also keeps the name a single path segment.
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(value) || value === '.' || value === '..') {
    throw new InvalidArgumentError('an endpoint name is 1-128 letters, digits, _ . - (and not . or ..)');
  }
  return value;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds');
  return n;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number ≥ 0');
  return n;
}

function age(unixSeconds: number | null): string {
  if (unixSeconds === null) return 'never';
  let s = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
  if (s < 60) return `${s}s ago`;
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return `${parts.slice(0, 2).join(' ')} ago`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

// ---------------------------------------------------------------------------------------------

async function configure(name: string, opts: AccessFlags & { provider: ProviderType; force?: boolean }): Promise<void> {
  const home = ferryHome();
  const dir = endpointDir(name, home);
  const configPath = configFilePath(name, home);
  const credsPath = credentialsPath(name, home);
  if ((existsSync(configPath) || existsSync(credsPath)) && !opts.force) {
    throw new CliError(
      `endpoint ${name} is already configured in ${dir}.\n` +
        `  Edit ${configPath} and restart it (ferry endpoint restart ${name}), or run configure again with --force\n` +
        `  to register it again and rewrite the config from the ${opts.provider} template (the old one is kept as config.yaml.bak).`,
    );
  }
  const access = await freshGatewayAccess(opts);
  const text = renderEndpointTemplate(opts.provider, name);
  // The same name gives the same endpoint id at the gateway, with a fresh token.
  const reg = await gatewayClient(access).registerEndpoint({ endpoint_name: name, display_name: name });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  if (existsSync(configPath)) copyFileSync(configPath, `${configPath}.bak`);
  writeFileSync(configPath, text, { mode: 0o644 });
  writeCredentials({ endpoint_name: name, endpoint_id: reg.endpoint_id, gateway_url: access.url, connection_url: reg.task_queue_info.connection_url, token: reg.token }, home);
  const running = runningPid(name, home);
  out(
    [
      `Configured endpoint ${name} (provider: ${opts.provider}).`,
      `  endpoint_id: ${reg.endpoint_id}`,
      `  gateway:     ${access.url}`,
      `  config:      ${configPath}`,
      `  credentials: ${credsPath} (mode 0600)`,
      '',
      opts.provider === 'local' ? 'Review the config, then start it:' : 'Fill in the site fields of the config (partition/queue, account, interchange.address), then start it:',
      `  ferry endpoint start ${name} --detach`,
      ...(running !== null ? ['', `It is running now (pid ${running}) with its old config and token: ferry endpoint restart ${name}`] : []),
    ].join('\n'),
  );
}

async function startForeground(name: string, configPath: string | undefined): Promise<void> {
  const home = ferryHome();
  if (!existsSync(credentialsPath(name, home))) {
    throw new CliError(`endpoint ${name} is not configured here (no ${credentialsPath(name, home)}); run: ferry endpoint configure ${name}`);
  }
  const release = claimPidFile(name, home);
  process.on('exit', release);
  const log = createLogger({ component: 'agent' });
  let agent: Awaited<ReturnType<typeof startEndpoint>> | null = null;
  try {
    agent = await startEndpoint({
      name,
      ...(configPath ? { configPath } : {}),
      log,
      onFatal: (error) => {
        process.stderr.write(`ferry: endpoint ${name} stopped: ${error.code}: ${error.message}\n`);
        void (agent?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
      },
    });
  } catch (err) {
    release();
    throw err;
  }
  const running = agent;
  const stop = () => void running.stop().finally(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function startInBackground(name: string, opts: { config?: string; timeout: number }): Promise<void> {
  const home = ferryHome();
  if (!existsSync(credentialsPath(name, home))) {
    throw new CliError(`endpoint ${name} is not configured here (no ${credentialsPath(name, home)}); run: ferry endpoint configure ${name}`);
  }
  const res = await startDetached({ name, home, ...(opts.config ? { configPath: opts.config } : {}), timeoutMs: opts.timeout * 1000 });
  switch (res.outcome) {
    case 'connected':
      out([`Endpoint ${name} started (pid ${res.pid}) and connected to the gateway.`, `  log:  ${res.log}`, `  stop: ferry endpoint stop ${name}`].join('\n'));
      return;
    case 'exited':
      throw new CliError(
        `endpoint ${name} exited at startup (${res.signal ? `signal ${res.signal}` : `code ${res.code}`}):\n${indent(explainExit(res.output))}\n  (log: ${res.log})`,
      );
    case 'timeout':
      throw new CliError(
        `endpoint ${name} (pid ${res.pid}) has not connected to the gateway within ${opts.timeout} s; it keeps retrying in the background.\n` +
          `  Watch it: ferry endpoint logs ${name} -f    Stop it: ferry endpoint stop ${name}`,
      );
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

async function stop(name: string, opts: { timeout: number }): Promise<void> {
  const home = ferryHome();
  requireLocal(name, home);
  const res = await stopAgent(name, home, opts.timeout * 1000);
  if (!res.wasRunning) out(`Endpoint ${name} is not running.`);
  else if (res.killed) out(`Endpoint ${name} (pid ${res.pid}) did not stop within ${opts.timeout} s after SIGTERM and was killed.`);
  else out(`Endpoint ${name} (pid ${res.pid}) stopped.`);
}

interface StatusReport {
  name: string;
  endpoint_id: string | null;
  config: string | null;
  process: { running: boolean; pid: number | null };
  gateway: (EndpointStatus & { url: string; last_heartbeat_age_s: number | null }) | { url: string | null; error: string };
}

async function status(name: string, opts: AccessFlags & { json?: boolean }): Promise<void> {
  const home = ferryHome();
  const local = requireLocal(name, home);
  const report: StatusReport = {
    name,
    endpoint_id: local.endpointId,
    config: local.configPath ?? resolveConfigPath(name),
    process: { running: local.pid !== null, pid: local.pid },
    gateway: { url: null, error: 'unknown' },
  };
  let failed: unknown = null;
  try {
    const access = await freshGatewayAccess(opts);
    report.gateway = { url: access.url, error: 'unknown' };
    if (!local.endpointId) throw new CliError(`no credentials for ${name}: run ferry endpoint configure ${name}`);
    const st = await gatewayClient(access).endpointStatus(local.endpointId);
    const hb = st.details.last_heartbeat;
    report.gateway = { url: access.url, ...st, last_heartbeat_age_s: hb === null ? null : Math.max(0, Math.round(Date.now() / 1000 - hb)) };
  } catch (err) {
    failed = err;
    report.gateway = { url: report.gateway.url, error: describeError(err) };
  }
  if (opts.json) out(JSON.stringify(report, null, 2));
  else {
    const g = report.gateway;
    const lines = [
      `Endpoint ${name}`,
      `  endpoint_id: ${report.endpoint_id ?? '(not registered)'}`,
      `  config:      ${report.config}`,
      `  process:     ${local.pid !== null ? `running (pid ${local.pid})` : 'not running'}`,
    ];
    if ('error' in g) lines.push(`  gateway:     unavailable: ${g.error.split('\n')[0]}`);
    else {
      const d = g.details;
      lines.push(
        `  gateway:     ${g.status} (${g.url})`,
        `  workers:     ${d.total_workers} (${d.idle_workers} idle)`,
        `  tasks:       ${d.pending_tasks} pending, ${d.outstanding_tasks} outstanding`,
        `  managers:    ${d.managers}`,
        `  blocks:      ${d.blocks}`,
        `  heartbeat:   ${age(d.last_heartbeat)}`,
      );
    }
    out(lines.join('\n'));
  }
  // The local part is shown either way; a script still learns that the gateway part is missing.
  if (failed) fail(failed);
}

interface ListRow {
  name: string;
  endpoint_id: string | null;
  provider: string | null;
  /** Configured under this machine's FERRY_HOME. */
  local: boolean;
  running: boolean;
  pid: number | null;
  status: 'online' | 'offline' | 'unknown' | 'not registered';
}

async function list(opts: AccessFlags & { json?: boolean }): Promise<void> {
  const home = ferryHome();
  const locals = localEndpoints(home);
  const rows = new Map<string, ListRow>();
  for (const l of locals) {
    rows.set(l.endpointId ?? `name:${l.name}`, { name: l.name, endpoint_id: l.endpointId, provider: l.provider, local: true, running: l.pid !== null, pid: l.pid, status: 'unknown' });
  }
  let failed: unknown = null;
  try {
    const client = gatewayClient(await freshGatewayAccess(opts));
    const remote: EndpointDoc[] = await client.listEndpoints();
    const statuses = await Promise.all(remote.map((e) => client.endpointStatus(e.endpoint_id).then((s) => s.status, () => 'unknown' as const)));
    remote.forEach((e, i) => {
      const row = rows.get(e.endpoint_id);
      if (row) row.status = statuses[i]!;
      else rows.set(e.endpoint_id, { name: e.endpoint_name, endpoint_id: e.endpoint_id, provider: null, local: false, running: false, pid: null, status: statuses[i]! });
    });
    for (const row of rows.values()) if (row.local && row.status === 'unknown' && !remote.some((e) => e.endpoint_id === row.endpoint_id)) row.status = 'not registered';
  } catch (err) {
    failed = err;
  }
  const all = [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (opts.json) out(JSON.stringify(all, null, 2));
  else if (all.length === 0) out(`No endpoints. Create one with: ferry endpoint configure NAME`);
  else {
    out(
      table([
        ['NAME', 'ENDPOINT ID', 'PROVIDER', 'LOCAL PROCESS', 'GATEWAY'],
        ...all.map((r) => [r.name, r.endpoint_id ?? '-', r.provider ?? '-', !r.local ? '(elsewhere)' : r.running ? `running (pid ${r.pid})` : 'stopped', r.status]),
      ]),
    );
  }
  if (failed) fail(failed);
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

async function remove(name: string, opts: AccessFlags & { yes?: boolean; timeout: number }): Promise<void> {
  const home = ferryHome();
  const local = requireLocal(name, home);
  const access = await freshGatewayAccess(opts);
  if (!opts.yes) {
    if (!process.stdin.isTTY) throw new CliError(`refusing to delete endpoint ${name} without confirmation: stdin is not a terminal; pass --yes`);
    const ok = await confirm(`Delete endpoint ${name}${local.endpointId ? ` (${local.endpointId})` : ''}: stop it, delete it at ${access.url} and remove ${local.dir}? [y/N] `);
    if (!ok) throw new CliError('not deleted');
  }
  const stopped = await stopAgent(name, home, opts.timeout * 1000);
  if (stopped.wasRunning) out(`Stopped endpoint ${name} (pid ${stopped.pid}).`);
  if (local.endpointId) {
    try {
      await gatewayClient(access).deleteEndpoint(local.endpointId);
      out(`Deleted endpoint ${local.endpointId} at ${access.url}.`);
    } catch (err) {
      // Already gone at the gateway (or never this user's): the local folder is all that is left.
      if (!(err instanceof FerryApiError && err.status === 404)) throw err;
      out(`The gateway has no endpoint ${local.endpointId} (already deleted).`);
    }
  }
  rmSync(local.dir, { recursive: true, force: true });
  out(`Removed ${local.dir}.`);
}

// ---------------------------------------------------------------------------------------------

export function registerEndpointCommands(program: Command): void {
  const endpoint = program.command('endpoint').description('configure, run and manage endpoints (state in $FERRY_HOME/endpoints/NAME/)');

  withAccess(
    endpoint
      .command('configure')
      .description('write $FERRY_HOME/endpoints/NAME/config.yaml from a commented template and register the endpoint at the gateway')
      .argument('<name>', 'endpoint name', endpointName)
      .addOption(new Option('--provider <type>', 'where workers run').choices(PROVIDER_TYPES).default('local'))
      .option('--force', 'configure an existing endpoint again (register again, rewrite the config; the old one is kept as config.yaml.bak)'),
  ).action(action(configure));

  endpoint
    .command('start')
    .description('start the endpoint NAME (in the foreground; --detach: in the background, once connected)')
    .argument('<name>', 'endpoint name', endpointName)
    .option('--config <path>', 'YAML config (default: $FERRY_HOME/endpoints/NAME/config.yaml, then endpoint-config/NAME.yaml)')
    .option('-d, --detach', 'run in the background (log: $FERRY_HOME/endpoints/NAME/endpoint.log); return once connected to the gateway')
    .option('--timeout <seconds>', 'with --detach: how long to wait for the connection', seconds, DEFAULT_START_TIMEOUT_S)
    .action(
      action(async (name: string, opts: { config?: string; detach?: boolean; timeout: number }) => {
        if (opts.detach) await startInBackground(name, opts);
        else await startForeground(name, opts.config);
      }),
    );

  endpoint
    .command('stop')
    .description('stop the endpoint NAME (SIGTERM, then SIGKILL after --timeout); exits 0 if it was not running')
    .argument('<name>', 'endpoint name', endpointName)
    .option('--timeout <seconds>', 'how long to wait for a clean exit', seconds, DEFAULT_STOP_TIMEOUT_S)
    .action(action(stop));

  endpoint
    .command('restart')
    .description('stop the endpoint NAME if it runs, then start it in the background')
    .argument('<name>', 'endpoint name', endpointName)
    .option('--config <path>', 'YAML config (default: $FERRY_HOME/endpoints/NAME/config.yaml, then endpoint-config/NAME.yaml)')
    .option('--timeout <seconds>', 'how long to wait for the old agent to exit and the new one to connect', seconds, DEFAULT_START_TIMEOUT_S)
    .action(
      action(async (name: string, opts: { config?: string; timeout: number }) => {
        await stop(name, opts);
        await startInBackground(name, opts);
      }),
    );

  withAccess(
    endpoint
      .command('status')
      .description("the endpoint's local process and the gateway's view of it")
      .argument('<name>', 'endpoint name', endpointName)
      .option('--json', 'machine-readable output'),
  ).action(action(status));

  withAccess(
    endpoint.command('list').description('endpoints configured here and at the gateway, with their state').option('--json', 'machine-readable output'),
  ).action(action(list));

  withAccess(
    endpoint
      .command('delete')
      .description('stop the endpoint NAME, delete it at the gateway and remove its folder')
      .argument('<name>', 'endpoint name', endpointName)
      .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
      .option('--timeout <seconds>', 'how long to wait for the agent to stop', seconds, DEFAULT_STOP_TIMEOUT_S),
  ).action(action(remove));

  endpoint
    .command('logs')
    .description("print the end of the endpoint's log (endpoint.log of a --detach start)")
    .argument('<name>', 'endpoint name', endpointName)
    .option('-n, --lines <n>', 'how many lines', count, 50)
    .option('-f, --follow', 'keep printing new lines')
    .action(action(logs));
}
