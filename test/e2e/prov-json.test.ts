// A campaign's lineage exported as one PROV-JSON bundle from a real stack (gateway in workerd, a
// real endpoint): an object uploaded through two ingest filters, a task that used it and
// succeeded, one that failed, one cancelled before it ran, and a task message ingested from
// outside. The bundle validates against the W3C PROV-JSON submission's JSON Schema, and the `prov`
// Python package (an independent PROV implementation) reads it back with every statement, id and
// attribute intact: ids and qualified names resolve under the declared prefixes, times parse as
// xsd:dateTime.

import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Client } from '../../src/sdk/client';
import { provJsonSchemaErrors, provStatements, readStatements, readWithPythonProv, type PythonReading, type ReadValue } from '../helpers/prov-json';
import { startStack, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

const PROV = 'http://www.w3.org/ns/prov#';
const FERRY = 'https://ferry.dev/ns/prov#';
const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const enc = new TextEncoder();
const dec = new TextDecoder();

const upper = (b: Uint8Array) => enc.encode(dec.decode(b).toUpperCase());
const reverse = (b: Uint8Array) => b.slice().reverse();
const CODE = `async (data, n) => {
  const text = await data.text();
  if (n < 0) throw new RangeError('negative ' + n);
  return { length: text.length + n, copy: { $ref: '%OUT%' } };
}`;

let stack: Stack;
let alice: Client;
let token: string;
let endpoint: EndpointHandle;
let offline: EndpointHandle;

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; text: string; body: any }> {
  const res = await fetch(stack.gateway.url + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  stack = await startStack();
  alice = await stack.client('alice');
  token = await stack.tokenFor('alice');
  endpoint = await stack.createEndpoint('prov', 'alice', { task_timeout_s: 10, task_memory_mb: 64 });
  offline = await stack.createEndpoint('prov-offline', 'alice');
  endpoint.start();
  await waitForWorkers(alice, endpoint.endpointId, 1);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('PROV-JSON export', () => {
  it('validates against the PROV-JSON schema and round-trips through the prov Python library without loss', async () => {
    const raw = enc.encode('hello lineage');
    const input = await alice.put(raw, { contentType: 'text/plain', filters: [{ name: 'upper', fn: upper, params: { locale: 'C' } }, { name: 'reverse', fn: reverse }] });
    const produced = await alice.put('what the task points at');
    const code = CODE.replace('%OUT%', produced.$ref);
    const fn = await alice.registerFunction(code, { name: 'measure' });
    const options = { workflow_id: 'wf-prov', campaign_id: 'camp-prov' };

    const ok = await alice.submit(endpoint.endpointId, fn, [{ $ref: input.$ref }, 2], undefined, options);
    const bad = await alice.submit(endpoint.endpointId, fn, [{ $ref: input.$ref }, -1], undefined, options);
    const never = await alice.submit(offline.endpointId, fn, [{ $ref: input.$ref }, 5], undefined, options);
    expect((await alice.cancel(never)).status).toBe('cancelled');
    const [okDoc, badDoc] = await alice.waitAll([ok, bad], { timeout: 60 });
    expect(okDoc!.status, JSON.stringify(okDoc!.exception)).toBe('success');
    expect(okDoc!.result).toEqual({ length: 'hello lineage'.length + 2, copy: { $ref: produced.$ref } });
    expect(badDoc!.status).toBe('failed');
    const ingest = await api('/v3/provenance/events', {
      method: 'POST',
      body: JSON.stringify({ messages: [{ task_id: 'plot-1', workflow_id: 'wf-plot', campaign_id: 'camp-prov', activity_id: 'plot', used: [produced.$ref], started_at: '2024-05-01T10:00:00Z', ended_at: '2024-05-01T10:00:03.250Z', status: 'FINISHED', hostname: 'laptop' }] }),
    });
    expect(ingest.status, ingest.text).toBe(200);

    // Every ended task has its record (the hub writes it with the outcome): wait for the three.
    const records = await vi.waitFor(async () => {
      const res = await api('/v3/provenance?workflow_id=wf-prov');
      expect(res.body.records, 'the three records of wf-prov').toHaveLength(3);
      return res.body.records as Array<{ task_id: string; status: string; transitions: Record<string, number> }>;
    }, { timeout: 30_000, interval: 100 });
    const bundle = await api('/v3/provenance?campaign_id=camp-prov&format=prov-json');
    expect(bundle.status, bundle.text).toBe(200);
    const doc = bundle.body as Record<string, Record<string, Record<string, unknown>>>;

    // 1. The W3C submission's schema accepts it; and the schema check bites (two broken copies).
    expect(provJsonSchemaErrors(doc)).toEqual([]);
    const broken = structuredClone(doc);
    delete Object.values(broken.used!)[0]!['prov:entity'];
    Object.values(broken.wasGeneratedBy!)[0]!['prov:time'] = 'yesterday';
    const errors = provJsonSchemaErrors(broken);
    expect(errors.some((e) => e.includes("must have required property 'prov:entity'"))).toBe(true);
    expect(errors.some((e) => e.includes('must match format "date-time"'))).toBe(true);
    expect(provJsonSchemaErrors({ ...doc, activities: {} })).not.toEqual([]);

    // 2. The independent reader.
    const reading = await readWithPythonProv(bundle.text);
    expect(reading.bundles).toBe(0);
    // Nothing lost, nothing added: every statement with every attribute, as the library typed it.
    expect(readStatements(reading)).toEqual(provStatements(doc));

    const view = new Reading(reading);
    const task = (id: string) => `${FERRY}task/${id}`;
    expect(view.ids('prov:Activity').sort()).toEqual([task(ok), task(bad), task(never), task('plot-1'), `${FERRY}ingest/${input.$ref}/filter/1`, `${FERRY}ingest/${input.$ref}/filter/2`].sort());

    // Tasks: status, workflow/campaign/group, the time of every state change as an xsd:dateTime.
    for (const r of records) {
      const a = view.attrs(task(r.task_id));
      const group = (await alice.getTask(r.task_id)).details.task_group_id;
      expect(a.get('ferry:status')).toEqual([r.status]);
      expect(a.get('ferry:workflow_id')).toEqual(['wf-prov']);
      expect(a.get('ferry:campaign_id')).toEqual(['camp-prov']);
      expect(a.get('ferry:task_group_id')).toEqual([group]);
      expect(a.get('prov:type')).toEqual([{ qname: 'ferry:Task', uri: `${FERRY}Task` }]);
      for (const [state, at] of Object.entries(r.transitions)) {
        const [v] = a.get(`ferry:transition_${state.replace(/-/g, '_')}`) ?? [];
        expect(v, `${r.task_id} ${state}`).toHaveProperty('dateTime');
        expect(Date.parse((v as { dateTime: string }).dateTime)).toBe(new Date(at * 1000).getTime());
      }
      expect(Object.keys(r.transitions).length).toBeGreaterThanOrEqual(2);
    }
    expect(records.map((r) => r.status).sort()).toEqual(['cancelled', 'failed', 'success']);
    expect(view.attrs(task(ok)).get('prov:endTime')?.[0]).toHaveProperty('dateTime');
    expect(view.attrs(task('plot-1')).get('prov:endTime')).toEqual([{ dateTime: '2024-05-01T10:00:03.250000+00:00' }]);

    // The function by its digest; inputs: the object by id and content digest, the inline 2 by digest.
    const fnAttrs = view.attrs(`${FERRY}function/${fn}`);
    expect(fnAttrs.get('prov:label')).toEqual(['measure']);
    expect(fnAttrs.get('ferry:code_sha256')).toEqual([sha256(code)]);
    const object = `${FERRY}object/${input.$ref}`;
    expect(view.attrs(object).get('ferry:sha256')).toEqual([input.sha256]);
    expect(view.attrs(object).get('ferry:object_id')).toEqual([input.$ref]);
    expect(view.attrs(`${FERRY}value/${sha256('2')}`).get('ferry:sha256')).toEqual([sha256('2')]);
    expect(view.relations('prov:Usage', task(ok)).map((u) => u['prov:entity'])).toEqual(expect.arrayContaining([object, `${FERRY}value/${sha256('2')}`, `${FERRY}function/${fn}`]));
    // Output: the inline result by digest and the object it points at, derived from the inputs.
    const result = `${FERRY}result/${ok}`;
    expect(view.attrs(result).get('ferry:sha256')).toEqual([sha256(JSON.stringify(okDoc!.result))]);
    expect(view.relations('prov:Generation', task(ok)).map((g) => g['prov:entity']).sort()).toEqual([`${FERRY}object/${produced.$ref}`, result].sort());
    expect(view.all('prov:Derivation').some((d) => d['prov:generatedEntity'] === result && d['prov:usedEntity'] === object)).toBe(true);
    expect(view.all('prov:Attribution').some((d) => d['prov:entity'] === result && d['prov:agent'] === `${FERRY}user/alice`)).toBe(true);
    // Nothing came out of the failed and the cancelled task.
    expect(view.relations('prov:Generation', task(bad))).toEqual([]);
    expect(view.relations('prov:Generation', task(never))).toEqual([]);

    // Agents: the user, the endpoint and the worker host, with PROV's types.
    expect(view.attrs(`${FERRY}user/alice`).get('prov:type')).toEqual([{ qname: 'prov:Person', uri: `${PROV}Person` }]);
    expect(view.attrs(`${FERRY}endpoint/${endpoint.endpointId}`).get('prov:type')).toEqual([{ qname: 'prov:SoftwareAgent', uri: `${PROV}SoftwareAgent` }]);
    const agentsOf = (id: string) => view.relations('prov:Association', id).map((a) => a['prov:agent'] ?? '');
    const hosts = agentsOf(task(ok)).filter((a) => a.startsWith(`${FERRY}host/`));
    expect(hosts).toHaveLength(1);
    expect(agentsOf(task(ok))).toEqual(expect.arrayContaining([`${FERRY}user/alice`, `${FERRY}endpoint/${endpoint.endpointId}`]));
    expect(agentsOf(task(never)).some((a) => a.startsWith(`${FERRY}host/`))).toBe(false);
    expect(view.relations('prov:Association', task(ok)).find((a) => a['prov:agent'] === `${FERRY}user/alice`)?.['prov:plan']).toBe(`${FERRY}function/${fn}`);

    // The ingest filters, activities of their own, in order: raw bytes → upper → reverse → the object.
    const filter = (n: number) => `${FERRY}ingest/${input.$ref}/filter/${n}`;
    const stage = (n: number) => `${FERRY}ingest/${input.$ref}/stage/${n}`;
    expect(view.attrs(filter(1)).get('ferry:filter_name')).toEqual(['upper']);
    expect(view.attrs(filter(1)).get('ferry:params')).toEqual([JSON.stringify({ locale: 'C' })]);
    expect(view.attrs(filter(1)).get('ferry:source_sha256')).toEqual([sha256(upper.toString())]);
    expect(view.attrs(filter(2)).get('ferry:filter_name')).toEqual(['reverse']);
    expect(view.relations('prov:Usage', filter(1)).map((u) => u['prov:entity'])).toEqual([stage(0)]);
    expect(view.relations('prov:Generation', filter(1)).map((g) => g['prov:entity'])).toEqual([stage(1)]);
    expect(view.relations('prov:Usage', filter(2)).map((u) => u['prov:entity'])).toEqual([stage(1)]);
    expect(view.relations('prov:Generation', filter(2)).map((g) => g['prov:entity'])).toEqual([object]);
    expect(view.relations('prov:Association', filter(2))[0]?.['prov:plan']).toBe(`${FERRY}filter_source/${sha256(reverse.toString())}`);
    expect(sha256(reverse(upper(raw)))).toBe(input.sha256);

    // The ingested message joins the graph through the object the task generated.
    expect(view.relations('prov:Usage', task('plot-1')).map((u) => u['prov:entity'])).toEqual([`${FERRY}object/${produced.$ref}`]);
  });
});

/** Lookups over what the Python library read: attributes by record id, relations by activity. */
class Reading {
  constructor(private readonly reading: PythonReading) {}

  ids(type: string): string[] {
    return this.reading.records.filter((r) => r.type === type).map((r) => this.uri(r.id!));
  }

  attrs(id: string): Map<string, ReadValue[]> {
    const matches = this.reading.records.filter((r) => r.id !== null && this.uri(r.id) === id);
    expect(matches, `one record ${id}`).toHaveLength(1);
    const out = new Map<string, ReadValue[]>();
    for (const [name, value] of matches[0]!.attributes) out.set(name, [...(out.get(name) ?? []), value]);
    return out;
  }

  /** Relations of a type as {attribute: URI or value}. */
  all(type: string): Array<Record<string, string>> {
    return this.reading.records
      .filter((r) => r.type === type)
      .map((r) => Object.fromEntries(r.attributes.map(([k, v]) => [k, v !== null && typeof v === 'object' && 'uri' in v ? v.uri : String(v)])));
  }

  relations(type: string, activity: string): Array<Record<string, string>> {
    return this.all(type).filter((r) => r['prov:activity'] === activity);
  }

  private uri(name: string): string {
    const at = name.indexOf(':');
    const ns = { prov: PROV, ...this.reading.namespaces }[name.slice(0, at)];
    return ns === undefined ? name : ns + name.slice(at + 1);
  }
}
