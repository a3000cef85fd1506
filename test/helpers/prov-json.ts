// Checks of Ferry's PROV-JSON documents from outside Ferry's own code:
// - `provJsonSchemaErrors`: the W3C PROV-JSON submission's JSON Schema (test/fixtures), validated
//   with ajv (draft-04 and its formats, `uri` and `date-time`, enforced);
// - `readWithPythonProv`: the document as the `prov` Python package (trungdong/prov, the reference
//   PROV-JSON implementation; Debian's python3-prov, .ci/prov-packages.txt) reads it;
// - `provStatements`: one canonical line per PROV statement, both for Ferry's document and for what
//   the library read, so a test can compare the two as multisets (nothing lost, nothing added).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { PROJECT_ROOT } from '../../src/cli/gateway-process';
import { missingServiceError } from './missing-service';

// Debian's python3-prov installs into the system interpreter, not into a pyenv/venv one earlier on PATH.
const SYSTEM_PYTHON = '/usr/bin/python3';

let validator: ValidateFunction | null = null;

/** The schema's complaints about `doc` (empty when it validates). */
export function provJsonSchemaErrors(doc: unknown): string[] {
  if (!validator) {
    const schema = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'prov-json-schema.json'), 'utf8')) as object;
    // strict: false — the submission's schema has keywords draft-04 does not know (it ignores them too).
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    validator = ajv.compile(schema);
  }
  if (validator(doc)) return [];
  return (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${e.params ? JSON.stringify(e.params) : ''}`.trim());
}

function pythonProvInstalled(): boolean {
  return existsSync(SYSTEM_PYTHON) && spawnSync(SYSTEM_PYTHON, ['-c', 'import prov'], { stdio: 'ignore' }).status === 0;
}

/** A value as the Python library typed it. */
export type ReadValue = string | number | boolean | null | { qname: string; uri: string } | { dateTime: string } | { literal: string; datatype: string | null; lang: string | null } | { uri: string } | { unknown: string };

export interface PythonReading {
  namespaces: Record<string, string>;
  bundles: number;
  records: Array<{ type: string; id: string | null; attributes: Array<[string, ReadValue]> }>;
}

/**
 * Parses `doc` (serialized as the gateway sent it) with prov.model.ProvDocument.deserialize; rejects,
 * naming the package, when the system python3 lacks `prov`.
 */
export function readWithPythonProv(docText: string): Promise<PythonReading> {
  if (!pythonProvInstalled()) return Promise.reject(missingServiceError(`${SYSTEM_PYTHON} with the prov package`, 'prov-packages.txt'));
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, [join(PROJECT_ROOT, 'test', 'helpers', 'prov-read.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`prov-read.py exited ${code}: ${err.slice(-4000)}`));
      resolve(JSON.parse(out) as PythonReading);
    });
    child.stdin.end(docText);
  });
}

const RECORD_TYPES: Record<string, string> = {
  entity: 'prov:Entity',
  activity: 'prov:Activity',
  agent: 'prov:Agent',
  used: 'prov:Usage',
  wasGeneratedBy: 'prov:Generation',
  wasInformedBy: 'prov:Communication',
  wasDerivedFrom: 'prov:Derivation',
  wasAttributedTo: 'prov:Attribution',
  wasAssociatedWith: 'prov:Association',
  actedOnBehalfOf: 'prov:Delegation',
};
/** PROV's own attributes whose values are identifiers of other statements' subjects. */
const REFERENCE_ATTRIBUTES = new Set(['prov:entity', 'prov:activity', 'prov:agent', 'prov:plan', 'prov:delegate', 'prov:responsible', 'prov:generatedEntity', 'prov:usedEntity', 'prov:informant', 'prov:informed', 'prov:generation', 'prov:usage', 'prov:trigger']);
const TIME_ATTRIBUTES = new Set(['prov:startTime', 'prov:endTime', 'prov:time']);
const PROV_NS = 'http://www.w3.org/ns/prov#';
const XSD_NS = 'http://www.w3.org/2001/XMLSchema#';

type Canonical = string | number | boolean | null | { q: string } | { t: number } | { lit: string; type: string | null };

function expand(name: string, prefixes: Record<string, string>): string {
  const at = name.indexOf(':');
  const ns = at > 0 ? prefixes[name.slice(0, at)] : undefined;
  if (ns === undefined) throw new Error(`qualified name ${name} has no declared prefix`);
  return ns + name.slice(at + 1);
}

/** Ferry's side: what each attribute value means under the PROV-JSON rules. */
function fromDocument(name: string, value: unknown, prefixes: Record<string, string>): Canonical {
  if (REFERENCE_ATTRIBUTES.has(name)) return { q: expand(String(value), prefixes) };
  if (TIME_ATTRIBUTES.has(name)) return { t: Date.parse(String(value)) };
  if (value !== null && typeof value === 'object') {
    const { $, type } = value as { $: string; type?: string };
    if (type === 'prov:QUALIFIED_NAME') return { q: expand($, prefixes) };
    if (type === 'xsd:dateTime') return { t: Date.parse($) };
    return { lit: $, type: type === undefined ? null : expand(type, prefixes) };
  }
  return value as Canonical;
}

/** The library's side. */
function fromReading(value: ReadValue): Canonical {
  if (value !== null && typeof value === 'object') {
    if ('qname' in value) return { q: value.uri };
    if ('dateTime' in value) return { t: Date.parse(value.dateTime) };
    if ('literal' in value) return { lit: value.literal, type: value.datatype === null ? null : expand(value.datatype, { prov: PROV_NS, xsd: XSD_NS }) };
    throw new Error(`the library read a value Ferry never writes: ${JSON.stringify(value)}`);
  }
  return value;
}

function line(type: string, id: string | null, attributes: Array<[string, Canonical]>): string {
  const attrs = attributes.map(([k, v]) => JSON.stringify([k, v])).sort();
  return JSON.stringify({ type, id, attrs });
}

/** One canonical line per statement of Ferry's document (ids expanded to URIs; `_:` ids are anonymous). */
export function provStatements(doc: Record<string, unknown>): string[] {
  const prefixes = { prov: PROV_NS, xsd: XSD_NS, ...(doc.prefix as Record<string, string>) };
  const out: string[] = [];
  for (const [kind, members] of Object.entries(doc)) {
    if (kind === 'prefix') continue;
    const type = RECORD_TYPES[kind];
    if (!type) throw new Error(`unexpected member ${kind}`);
    for (const [id, attrs] of Object.entries(members as Record<string, Record<string, unknown>>)) {
      const attributes: Array<[string, Canonical]> = [];
      for (const [name, value] of Object.entries(attrs)) {
        const attr = expand(name, prefixes);
        for (const v of Array.isArray(value) ? value : [value]) attributes.push([attr, fromDocument(name, v, prefixes)]);
      }
      out.push(line(type, id.startsWith('_:') ? null : expand(id, prefixes), attributes));
    }
  }
  return out.sort();
}

/** The same lines for what the Python library read. */
export function readStatements(reading: PythonReading): string[] {
  const prefixes = { prov: PROV_NS, xsd: XSD_NS, ...reading.namespaces };
  return reading.records
    .map((r) =>
      line(
        r.type,
        r.id === null ? null : expand(r.id, prefixes),
        r.attributes.map(([name, v]) => [expand(name, prefixes), fromReading(v)] as [string, Canonical]),
      ),
    )
    .sort();
}
