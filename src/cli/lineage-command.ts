// `ferry lineage ID`: the lineage of a task or a data object as an indented tree in the terminal,
// drawn from the gateway's PROV-JSON documents (GET /v3/provenance/tasks/{id}, or
// /v3/provenance/objects/{id}?direction&depth&format=prov-json); `--json` prints the document itself.
// A task shows its status, times, function, inputs, outputs and agents; an object shows the tasks
// (and ingest filters) it came from (up, the default) or the ones that used it (--down).

import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { ProvDocument, ProvRecord, ProvValue } from '../provenance/prov-document';
import { errorFromBody } from '../protocol/error-body';
import { CliError, fail } from './cli-error';
import { freshGatewayAccess } from './oidc-login';
import type { AccessFlags, GatewayAccess } from './user-config';

interface LineageFlags extends AccessFlags {
  down?: boolean;
  depth: number;
  json?: boolean;
}

/** A line of the tree and the lines under it. */
export interface TreeNode {
  label: string;
  children: TreeNode[];
}

const MAX_DEPTH = 20;

function depth(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_DEPTH) throw new InvalidArgumentError(`must be an integer from 1 to ${MAX_DEPTH}`);
  return n;
}

/** GET a JSON document; null on 404 (unknown, not ended, or someone else's). */
async function getJson(access: GatewayAccess, path: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(access.url + path, { headers: { authorization: `Bearer ${access.token}` } });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(`cannot reach the gateway at ${access.url} (${cause?.code ?? cause?.message ?? (err as Error).message}; from ${access.urlSource})`);
  }
  const text = await res.text();
  if (res.status === 404) return null;
  if (!res.ok) throw errorFromBody(res.status, text);
  return JSON.parse(text) as unknown;
}

export async function runLineage(id: string, flags: LineageFlags, write: (text: string) => void = (t) => process.stdout.write(t)): Promise<void> {
  const access = await freshGatewayAccess(flags);
  const direction = flags.down ? 'down' : 'up';
  const taskDoc = (await getJson(access, `/v3/provenance/tasks/${encodeURIComponent(id)}`)) as ProvDocument | null;
  const doc = taskDoc ?? ((await getJson(access, `/v3/provenance/objects/${encodeURIComponent(id)}?direction=${direction}&depth=${flags.depth}&format=prov-json`)) as ProvDocument | null);
  if (doc === null) throw new CliError(`no such task or object: ${id} (a task has lineage once it has ended; others' tasks and objects are not shown)`);
  if (flags.json) {
    write(JSON.stringify(doc, null, 2) + '\n');
    return;
  }
  write((taskDoc ? taskLines(doc, id) : renderTree(new ProvGraph(doc).objectTree(id, direction))).join('\n') + '\n');
}

/** A task's PROV-JSON document as the terminal tree `ferry lineage TASK` prints. */
export function taskLines(doc: ProvDocument, taskId: string): string[] {
  return renderTree(new ProvGraph(doc).taskTree(taskId));
}

/** `├─ ` / `└─ ` lines under each label, `│  ` where a branch goes on. */
export function renderTree(node: TreeNode): string[] {
  const lines = [node.label];
  const walk = (children: TreeNode[], indent: string) => {
    children.forEach((child, i) => {
      const last = i === children.length - 1;
      lines.push(`${indent}${last ? '└─ ' : '├─ '}${child.label}`);
      walk(child.children, indent + (last ? '   ' : '│  '));
    });
  };
  walk(node.children, '');
  return lines;
}

/** The first value of an attribute as text (typed literals give their `$`). */
function text(value: ProvValue | undefined): string | undefined {
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return typeof first === 'object' ? first.$ : String(first);
}

function types(record: ProvRecord | undefined): string[] {
  const value = record?.['prov:type'];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => (typeof v === 'object' ? v.$ : String(v)));
}

/** A role or other qualified name without Ferry's prefix. */
function bare(name: string | undefined): string {
  return (name ?? '').replace(/^ferry:/, '');
}

function short(digest: string | undefined): string {
  return digest === undefined ? '?' : `${digest.slice(0, 12)}…`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function utc(iso: string): string {
  return iso.replace('T', ' ').replace(/Z$/, ' UTC');
}

type Relation = ProvRecord & { 'prov:activity'?: string; 'prov:entity'?: string };

/** A PROV-JSON document with the lookups the trees need. */
class ProvGraph {
  private readonly used: Relation[];
  private readonly generated: Relation[];
  private readonly associated: Relation[];

  constructor(private readonly doc: ProvDocument) {
    this.used = Object.values(doc.used ?? {}) as Relation[];
    this.generated = Object.values(doc.wasGeneratedBy ?? {}) as Relation[];
    this.associated = Object.values(doc.wasAssociatedWith ?? {}) as Relation[];
  }

  taskTree(taskId: string): TreeNode {
    const activityId = Object.keys(this.doc.activity).find((id) => text(this.doc.activity[id]!['ferry:task_id']) === taskId) ?? Object.keys(this.doc.activity)[0]!;
    const a = this.doc.activity[activityId]!;
    const children: TreeNode[] = [];
    const context = [['workflow', 'ferry:workflow_id'], ['campaign', 'ferry:campaign_id'], ['group', 'ferry:task_group_id'], ['activity', 'ferry:activity_id']]
      .filter(([, k]) => a[k!] !== undefined)
      .map(([name, k]) => `${name} ${text(a[k!])}`);
    if (context.length > 0) children.push(leaf(context.join(' · ')));
    const times: Array<readonly [string, string]> = Object.entries(a)
      .filter(([k]) => k.startsWith('ferry:transition_'))
      .map(([k, v]) => [k.slice('ferry:transition_'.length).replace(/_/g, '-'), text(v)!] as const);
    // The worker's start, when the gateway saw no `running` change (it learns of a run from its result).
    const start = text(a['prov:startTime']);
    if (start !== undefined && !times.some(([state]) => state === 'running')) times.push(['started (worker)', start]);
    times.sort((x, y) => Date.parse(x[1]) - Date.parse(y[1]));
    if (times.length > 0) children.push({ label: 'times', children: times.map(([state, at]) => leaf(`${state.padEnd(17)} ${utc(at)}`)) });
    const attempts = text(a['ferry:attempts']);
    const telemetry = [
      a['ferry:wall_time_s'] !== undefined ? `wall ${Number(text(a['ferry:wall_time_s'])).toFixed(3)} s` : null,
      a['ferry:cpu_time_s'] !== undefined ? `cpu ${Number(text(a['ferry:cpu_time_s'])).toFixed(3)} s` : null,
      a['ferry:peak_memory_bytes'] !== undefined ? `peak memory ${bytes(Number(text(a['ferry:peak_memory_bytes'])))}` : null,
      a['ferry:interpreter'] !== undefined ? text(a['ferry:interpreter'])! : null,
    ].filter((s) => s !== null);
    if (attempts !== undefined || telemetry.length > 0) children.push(leaf([attempts !== undefined ? `attempts ${attempts}` : null, ...telemetry].filter((s) => s !== null).join(' · ')));
    // A task that ran more than once: each execution, the lost ones with why.
    const history = Object.values(this.doc.activity)
      .filter((r) => types(r).includes('ferry:Attempt') && text(r['ferry:attempt_of']) === activityId)
      .sort((x, y) => Number(text(x['ferry:attempt'])) - Number(text(y['ferry:attempt'])));
    if (history.length > 0) {
      children.push({
        label: 'executions',
        children: history.map((r) => {
          const at = text(r['prov:endTime']);
          const where = text(r['ferry:host']);
          return leaf([`#${text(r['ferry:attempt'])} ${text(r['ferry:outcome'])}`, where ? `on ${where}` : null, at ? `at ${utc(at)}` : null, text(r['ferry:reason']) ?? null].filter((s) => s !== null).join(' · '));
        }),
      });
    }
    const fn = this.functionOf(activityId);
    if (fn) children.push(leaf(`function ${fn.name} ${fn.uuid}${fn.code ? ` (code sha256 ${short(fn.code)})` : ''}`));
    const inputs = this.used.filter((u) => u['prov:activity'] === activityId && bare(text(u['prov:role'])) !== 'function');
    if (inputs.length > 0) children.push({ label: 'used', children: inputs.map((u) => leaf(`${bare(text(u['prov:role']))}: ${this.describeEntity(u['prov:entity']!)}`)) });
    const outputs = this.generated.filter((g) => g['prov:activity'] === activityId);
    if (outputs.length > 0) children.push({ label: 'generated', children: outputs.map((g) => leaf(`${bare(text(g['prov:role']))}: ${this.describeEntity(g['prov:entity']!)}`)) });
    const agents = this.associated.filter((r) => r['prov:activity'] === activityId).map((r) => leaf(`${bare(text(r['prov:role']))}: ${this.describeAgent(text(r['prov:agent'])!)}`));
    if (agents.length > 0) children.push({ label: 'agents', children: agents });
    return { label: this.describeActivity(activityId), children };
  }

  objectTree(objectId: string, direction: 'up' | 'down'): TreeNode {
    const entityId = Object.keys(this.doc.entity).find((id) => text(this.doc.entity[id]!['ferry:object_id']) === objectId);
    if (entityId === undefined) return leaf(`object ${objectId} (no lineage)`);
    const shown = new Set<string>();
    const entityNode = (id: string, via: string | null): TreeNode => {
      const label = `${via ? `${via}: ` : ''}${this.describeEntity(id)}`;
      const links = direction === 'up' ? this.generated.filter((g) => g['prov:entity'] === id) : this.used.filter((u) => u['prov:entity'] === id);
      return { label, children: links.map((l) => activityNode(l['prov:activity']!)) };
    };
    const activityNode = (id: string): TreeNode => {
      const label = `${direction === 'up' ? 'generated by' : 'used by'} ${this.describeActivity(id)}`;
      if (shown.has(id)) return leaf(`${label} (shown above)`);
      shown.add(id);
      const links = direction === 'up' ? this.used.filter((u) => u['prov:activity'] === id && bare(text(u['prov:role'])) !== 'function') : this.generated.filter((g) => g['prov:activity'] === id);
      return { label, children: links.map((l) => entityNode(l['prov:entity']!, bare(text(l['prov:role'])) || null)) };
    };
    return entityNode(entityId, null);
  }

  private functionOf(activityId: string): { name: string; uuid: string; code: string | undefined } | null {
    const u = this.used.find((r) => r['prov:activity'] === activityId && bare(text(r['prov:role'])) === 'function');
    if (!u) return null;
    const fn = this.doc.entity[u['prov:entity']!];
    const uuid = text(fn?.['ferry:function_uuid']) ?? decodeURIComponent(u['prov:entity']!.replace(/^ferry:function\//, ''));
    return { name: text(fn?.['prov:label']) ?? '(unnamed)', uuid, code: text(fn?.['ferry:code_sha256']) };
  }

  private describeActivity(id: string): string {
    const a = this.doc.activity[id];
    if (types(a).includes('ferry:IngestFilter')) {
      const params = text(a?.['ferry:params']);
      return `ingest filter ${text(a?.['ferry:position'])} ${text(a?.['ferry:filter_name'])}${params ? ` ${params}` : ''} (source sha256 ${short(text(a?.['ferry:source_sha256']))})`;
    }
    const taskId = text(a?.['ferry:task_id']) ?? decodeURIComponent(id.replace(/^ferry:task\//, ''));
    const parts = [`task ${taskId}`, text(a?.['ferry:status']) ?? 'unknown'];
    const fn = this.functionOf(id);
    if (fn) parts.push(`${fn.name} (fn ${fn.uuid.slice(0, 8)})`);
    if (text(a?.['ferry:source']) === 'event') parts.push(`(ingested${a?.['ferry:activity_id'] !== undefined ? `: ${text(a['ferry:activity_id'])}` : ''})`);
    if (a?.['ferry:workflow_id'] !== undefined) parts.push(`[${text(a['ferry:workflow_id'])}]`);
    return parts.join('  ');
  }

  private describeEntity(id: string): string {
    const e = this.doc.entity[id];
    const t = types(e);
    if (t.includes('ferry:DataObject')) {
      const details = [e?.['ferry:sha256'] !== undefined ? `sha256 ${short(text(e['ferry:sha256']))}` : null, e?.['ferry:size'] !== undefined ? bytes(Number(text(e['ferry:size']))) : null].filter((s) => s !== null);
      const filters = this.filtersOf(id);
      if (filters.length > 0) details.push(`ingest filters: ${filters.join(' → ')}`);
      return `object ${text(e?.['ferry:object_id'])}${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
    }
    if (t.includes('ferry:Value')) {
      const value = text(e?.['prov:value']);
      return value !== undefined ? `value ${value} (sha256 ${short(text(e?.['ferry:sha256']))})` : `value sha256 ${short(text(e?.['ferry:sha256']))}`;
    }
    if (t.includes('ferry:IngestInput')) return 'the bytes as uploaded';
    if (t.includes('ferry:IngestStage')) return `output of filter ${id.replace(/^.*\/stage\//, '')}`;
    return id;
  }

  /** Names of the ingest filters that made an object, first to last. */
  private filtersOf(entityId: string): string[] {
    const names: string[] = [];
    let current: string | undefined = entityId;
    for (let guard = 0; current !== undefined && guard < 64; guard++) {
      const gen = this.generated.find((g) => g['prov:entity'] === current && types(this.doc.activity[g['prov:activity']!]).includes('ferry:IngestFilter'));
      if (!gen) break;
      names.unshift(text(this.doc.activity[gen['prov:activity']!]?.['ferry:filter_name']) ?? '?');
      current = this.used.find((u) => u['prov:activity'] === gen['prov:activity'])?.['prov:entity'];
    }
    return names;
  }

  private describeAgent(id: string): string {
    const a = this.doc.agent[id];
    return text(a?.['ferry:sub']) ?? text(a?.['ferry:endpoint_id']) ?? text(a?.['ferry:hostname']) ?? decodeURIComponent(id.replace(/^ferry:[a-z_]+\//, ''));
  }
}

function leaf(label: string): TreeNode {
  return { label, children: [] };
}

export function registerLineageCommand(program: Command): void {
  program
    .command('lineage')
    .description('print the lineage of a task (its inputs, outputs and agents) or of a data object (where it came from, or with --down what used it) as a tree')
    .argument('<id>', 'a task id or an object id')
    .option('--down', 'for an object: the tasks that used it and what they made (default: up, where it came from)')
    .option('--depth <n>', `for an object: task steps to follow (1-${MAX_DEPTH})`, depth, 5)
    .option('--json', 'print the W3C PROV-JSON document instead of the tree')
    .option('--gateway <url>', 'the gateway (default: FERRY_URL, then `ferry login`, then `ferry dev`)')
    .option('--token <token>', 'your user token (default: FERRY_TOKEN, then `ferry login`, then `ferry dev`)')
    .action(async (id: string, flags: LineageFlags) => {
      await runLineage(id, flags).catch(fail);
    });
}
