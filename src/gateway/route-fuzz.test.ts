// A property-based walk of every route of the OpenAPI document: generated valid and invalid paths,
// query strings, headers and bodies, sent as alice (who owns things) and as bob (who probes her ids).
// Whatever is sent: never a 5xx, every 4xx carries a code of the error table with that code's status,
// and nothing of alice's reaches bob. Routes added later are fuzzed without touching this test.
// CI runs a fixed seed and a bounded count; `npm run fuzz` a random seed and more runs
// (FUZZ_SEED, FUZZ_RUNS; a failure prints the seed and path to replay it).

import { exports } from 'cloudflare:workers';
import fc from 'fast-check';
import { expect, inject, it } from 'vitest';
import { ERROR_CODES, isErrorCode } from '../protocol/errors';
import { BASE, call, exchangeSecret, FakeAgent, newUser, registerEndpoint, registerFunction, submit, substitute, success, taskStatus, type User } from '../../test/helpers/gateway';

declare module 'vitest' {
  export interface ProvidedContext {
    fuzzSeed: string;
    fuzzRuns: string;
  }
}

const CI_SEED = 20_161;
const CI_RUNS = 400;
/** A generated `wait` that is valid is cut to this: a fuzz run must not hold a request for a minute. */
const MAX_WAIT_S = 0.05;

/** No request may hang: every wait it can ask for is cut to MAX_WAIT_S. */
const ANSWER_DEADLINE_MS = 10_000;

function answerWithin(ms: number, answer: Promise<Response>, what: string): Promise<Response> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([answer, deadline]).finally(() => clearTimeout(timer));
}

interface Operation {
  method: string;
  path: string;
  auth: string;
  query: Array<{ name: string; schema: { enum?: string[]; type?: string } }>;
  example: unknown;
  /** Deletes, cancels and revocations: the caller's own real ids are kept out of them. */
  destroys: boolean;
}

interface Identity {
  user: User;
  /** Values for path parameters and `{name}` placeholders of body examples (alice's task: the finished one, whose doc holds her result). */
  ids: Record<string, string>;
  endpointAccess: string;
  endpointSecret: string;
}

interface Request {
  op: Operation;
  as: 'alice' | 'bob';
  /** `own`: the caller's right token for the route; the others: a missing, garbage or wrong-kind token. */
  token: 'own' | 'none' | 'garbage' | 'user-for-endpoint';
  /** Whose ids fill the path and body: the caller's, the other user's, or generated ones. */
  idsOf: 'alice' | 'bob' | 'generated';
  generatedSegments: string[];
  query: Array<[string, string]>;
  headers: Record<string, string>;
  body: { kind: 'example' } | { kind: 'mutated'; key: string; value: unknown } | { kind: 'json'; value: unknown } | { kind: 'text'; text: string } | { kind: 'deep'; depth: number } | { kind: 'none' };
  extraSegment: string | null;
}

const printable = (max: number) => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`));
/** A path segment as a hostile client would write it: raw, possibly with `%` escapes that do not decode. */
const rawSegment = fc.oneof(
  fc.uuid().map(String),
  fc.stringMatching(/^[A-Za-z0-9._~%!$&'()*+,;=:@-]{1,40}$/),
  fc.constantFrom('..', '%2e%2e', '%00', '%zz', '%', '%ff%fe', 'a'.repeat(600), '.', '%2F', 'ab%20cd'),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
);

function queryValue(schema: { enum?: string[]; type?: string }): fc.Arbitrary<string> {
  const valid = schema.enum ? fc.constantFrom(...schema.enum) : schema.type === 'number' || schema.type === 'integer' ? fc.integer({ min: 1, max: 1000 }).map(String) : printable(30).filter((s) => s.length > 0);
  return fc.oneof(valid, fc.constantFrom('', '-1', '0', '0.5', '1e999', 'NaN', 'abc', '9'.repeat(40)), printable(30));
}

function requestArbitrary(ops: Operation[]): fc.Arbitrary<Request> {
  return fc.tuple(fc.constantFrom(...ops), fc.constantFrom('alice' as const, 'bob' as const)).chain(([op, as]) =>
    fc.record({
      op: fc.constant(op),
      as: fc.constant(as),
      token: fc.oneof({ weight: 8, arbitrary: fc.constant('own' as const) }, { weight: 1, arbitrary: fc.constantFrom('none' as const, 'garbage' as const, 'user-for-endpoint' as const) }),
      // alice mostly uses her own ids, so the routes' insides are reached, not only their 404s; bob
      // mostly probes hers.
      idsOf: fc.oneof({ weight: 4, arbitrary: fc.constant('alice' as const) }, { weight: 1, arbitrary: fc.constant('bob' as const) }, { weight: 1, arbitrary: fc.constant('generated' as const) }),
      generatedSegments: fc.array(rawSegment, { minLength: 2, maxLength: 2 }),
      query: fc.subarray(op.query).chain((params) => fc.tuple(...params.map((p) => queryValue(p.schema).map((v) => [p.name, v] as [string, string])))),
      headers: fc.record(
        {
          'content-type': fc.oneof(fc.constantFrom('application/json', 'text/html', 'text/plain; charset=utf-8', 'application/octet-stream', 'image/svg+xml'), printable(40)),
          'x-ferry-filters': fc.oneof(fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null').filter((s) => /^[\x20-\x7e]*$/.test(s)), printable(60)),
          range: fc.oneof(fc.constantFrom('bytes=0-3', 'bytes=5-', 'bytes=-2', 'bytes=999999-', 'bytes=3-1', 'bytes=0-0,2-3', 'items=0-1'), printable(20)),
          upgrade: fc.constant('websocket'),
          'idempotency-key': fc.oneof(fc.uuid(), fc.constantFrom('fixed-key', ''), printable(300)),
        },
        { requiredKeys: [] },
      ),
      body: fc.oneof(
        { weight: 5, arbitrary: fc.constant({ kind: 'example' as const }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('mutated' as const), key: fc.constantFrom('tasks', 'args', 'kwargs', 'wait', 'endpoint_id', 'function_uuid', 'function_code', 'endpoint_name', 'task_ids', 'messages', 'filters', 'part_size', 'ttl_s', 'meta', 'sha256', '__proto__', 'extra'), value: fc.jsonValue({ maxDepth: 3 }) }) },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue({ maxDepth: 4 }) }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('text' as const), text: fc.string({ maxLength: 200 }) }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('deep' as const), depth: fc.integer({ min: 50, max: 5000 }) }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
      ),
      extraSegment: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: rawSegment }),
    }),
  );
}

/** Cuts a valid `wait` anywhere in a body to MAX_WAIT_S; invalid ones stay, to be refused. */
function boundWaits(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(boundWaits);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'wait' && typeof v === 'number' && v > MAX_WAIT_S ? MAX_WAIT_S : boundWaits(v)]));
  }
  return value;
}

function bodyText(req: Request, values: Record<string, string>): string | undefined {
  const example = substitute(req.op.example ?? {}, values);
  switch (req.body.kind) {
    case 'none':
      return undefined;
    case 'example':
      return JSON.stringify(boundWaits(example));
    case 'mutated': {
      const base = example && typeof example === 'object' && !Array.isArray(example) ? { ...(example as Record<string, unknown>) } : {};
      base[req.body.key] = req.body.value;
      return JSON.stringify(boundWaits(base));
    }
    case 'json':
      return JSON.stringify(boundWaits(req.body.value));
    case 'text':
      return req.body.text;
    case 'deep':
      return `${'['.repeat(req.body.depth)}1${']'.repeat(req.body.depth)}`;
  }
}

it('every route, fuzzed as two users: no 5xx, every 4xx a code of the table, nothing of alice reaches bob', async () => {
  const seedSetting = inject('fuzzSeed');
  const seed = seedSetting === 'random' ? Math.floor(Math.random() * 2 ** 31) : seedSetting ? Number(seedSetting) : CI_SEED;
  const numRuns = Number(inject('fuzzRuns')) || CI_RUNS;

  const alice = await newUser('alice');
  const bob = await newUser('bob');
  // Contents only alice's answers may hold; bob is never given them to send.
  const aliceContents = ['alice-secret-result', 'alice-secret-bytes', 'alice_secret_fn', 'alice-secret-endpoint', alice.sub];
  const fn = await registerFunction(alice, 'function alice_secret_fn(a, b) { return a + b }', 'alice_secret_fn');
  const ep = await registerEndpoint(alice, { endpoint_name: 'alice-secret-endpoint' });
  const { task_ids, task_group_id } = await submit(alice, ep.endpoint_id, fn, [{ args: [1] }, { args: [2] }]);
  const agent = await FakeAgent.ready(ep.endpoint_id, ep.token);
  agent.send({ type: 'credit', n: 1 });
  const [delivered] = await agent.tasks(1);
  agent.send({ type: 'results', results: [success(delivered.task_id, 'alice-secret-result')] });
  await agent.next('results_ack');
  agent.close();
  const object = await call('put', '/v3/objects', { token: alice.token, rawBody: 'alice-secret-bytes' });
  const upload = await alice.call('post', '/v3/objects/uploads', {});
  expect([object.status, upload.status]).toEqual([200, 200]);

  const bobFn = await registerFunction(bob);
  const bobEp = await registerEndpoint(bob, { endpoint_name: 'bobs' });
  const bobTasks = await submit(bob, bobEp.endpoint_id, bobFn);
  const bobObject = await call('put', '/v3/objects', { token: bob.token, rawBody: 'bobs-bytes' });
  const bobUpload = await bob.call('post', '/v3/objects/uploads', {});
  const identities: Record<'alice' | 'bob', Identity> = {
    alice: {
      user: alice,
      ids: { function_uuid: fn, endpoint_id: ep.endpoint_id, task_id: delivered.task_id, task_group_id, id: object.body.$ref, upload_id: upload.body.upload_id, n: '1', group_name: (await alice.call('post', '/v3/groups', { name: 'alice-group', members: [] })).body.name },
      endpointAccess: (await exchangeSecret(ep.endpoint_id, ep.token)).body.access_token,
      endpointSecret: ep.token,
    },
    bob: {
      user: bob,
      ids: { function_uuid: bobFn, endpoint_id: bobEp.endpoint_id, task_id: bobTasks.task_ids[0]!, task_group_id: bobTasks.task_group_id, id: bobObject.body.$ref, upload_id: bobUpload.body.upload_id, n: '1', group_name: (await bob.call('post', '/v3/groups', { name: 'bob-group', members: [] })).body.name },
      endpointAccess: (await exchangeSecret(bobEp.endpoint_id, bobEp.token)).body.access_token,
      endpointSecret: bobEp.token,
    },
  };
  // alice's ids that bob has not sent yet: seeing one in an answer to him is a leak.
  const aliceIds = new Set([fn, ep.endpoint_id, ...task_ids, delivered.task_id, task_group_id, object.body.$ref, upload.body.upload_id]);
  const sentByBob: string[] = [];

  const doc = (await call('get', '/v3/openapi.json')).body;
  // A user revoking their own tokens would end the fuzz as that user (src/gateway/routes/keys.test.ts covers it).
  const ops: Operation[] = Object.entries(doc.paths as Record<string, Record<string, any>>).filter(([path]) => path !== '/v3/users/me/revoke').flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, op]) => ({
      method,
      path,
      auth: op['x-ferry-auth'] as string,
      query: ((op.parameters ?? []) as Array<{ in: string; name: string; schema: any }>).filter((p) => p.in === 'query'),
      example: op.requestBody?.content?.['application/json']?.example,
      destroys: method === 'delete' || path.endsWith('/revoke'),
    })),
  );
  expect(ops.length).toBeGreaterThanOrEqual(25);

  let requests = 0;
  const routesHit = new Set<string>();
  const statuses = new Map<number, number>();

  async function send(req: Request): Promise<void> {
    const me = identities[req.as];
    let values = req.idsOf === 'generated' ? {} : identities[req.idsOf].ids;
    // Nobody destroys their own things (generated ids instead): the things stay to be probed, and
    // alice's to be checked at the end. Destroying the other user's things is what must fail.
    if (req.op.destroys && req.idsOf === req.as) values = {};
    let generated = 0;
    const path = req.op.path.replace(/\{([a-z_]+)\}/g, (_, name: string) => values[name] ?? req.generatedSegments[generated++ % 2]!);
    const query = req.op.query.length === 0 ? '' : `?${req.query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(k === 'wait' && Number(v) > MAX_WAIT_S ? String(MAX_WAIT_S) : v)}`).join('&')}`;
    const url = `${path}${req.extraSegment === null ? '' : `/${req.extraSegment}`}${query}`;
    const headers: Record<string, string> = { ...req.headers };
    // workerd's fetch sends a request with Upgrade: websocket as a GET, whatever its method: a POST
    // with it would only test that the route table has no GET of that path.
    if (req.op.method !== 'get') delete headers.upgrade;
    const own = req.op.auth === 'endpoint' ? me.endpointAccess : req.op.auth === 'endpoint-secret' ? me.endpointSecret : me.user.token;
    const token = { own, none: null, garbage: 'not.a.jwt', 'user-for-endpoint': me.user.token }[req.token];
    if (token) headers.authorization = `Bearer ${token}`;
    const withBody = req.op.method !== 'get' && req.op.method !== 'delete';
    const body = withBody ? bodyText(req, values) : undefined;
    if (req.as === 'bob') sentByBob.push(url, body ?? '', JSON.stringify(headers));

    const what = `${req.as} ${req.op.method.toUpperCase()} ${url} (body ${JSON.stringify(body?.slice(0, 120))})`;
    const res = await answerWithin(ANSWER_DEADLINE_MS, exports.default.fetch(`${BASE}${url}`, { method: req.op.method.toUpperCase(), headers, body }), what);
    requests++;
    routesHit.add(`${req.op.method.toUpperCase()} ${req.op.path}`);
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    let text = '';
    if (res.status === 101) res.webSocket!.accept(), res.webSocket!.close(1000, 'fuzz');
    // An event stream (GET /v3/events) never ends by itself: its headers are the answer.
    else if (res.status === 200 && res.headers.get('content-type')?.startsWith('text/event-stream')) await res.body?.cancel();
    else text = await res.text();
    const where = `${what} → ${res.status} ${text.slice(0, 300)}`;

    expect(res.status, where).toBeLessThan(500);
    if (res.status >= 400) {
      const code = (JSON.parse(text) as { code?: unknown }).code;
      expect(isErrorCode(code), where).toBe(true);
      expect(ERROR_CODES[code as keyof typeof ERROR_CODES].status, where).toBe(res.status);
    }
    if (req.as === 'bob') {
      for (const trace of aliceContents) expect(text, where).not.toContain(trace);
      const sent = sentByBob.join('\n');
      for (const id of aliceIds) if (!sent.includes(id)) expect(text, where).not.toContain(id);
    }
  }

  await fc.assert(
    fc.asyncProperty(requestArbitrary(ops), (req) => send(req)),
    { seed, numRuns, endOnFailure: true },
  );
  const summary = `route fuzz: seed ${seed}, ${requests} requests, ${routesHit.size} of ${ops.length} routes, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`;
  console.log(summary);
  expect(routesHit.size, summary).toBe(ops.length);

  // Nothing of alice's was taken away by anyone's deletes, cancels or revocations.
  expect((await alice.call('get', `/v2/functions/${fn}`)).status).toBe(200);
  expect((await alice.call('get', `/v2/endpoints/${ep.endpoint_id}`)).status).toBe(200);
  expect((await taskStatus(alice, delivered.task_id)).result).toBe('alice-secret-result');
  expect((await call('get', `/v3/objects/${object.body.$ref}`, { token: alice.token })).text).toBe('alice-secret-bytes');
}, 30_000 + 300 * (Number(inject('fuzzRuns')) || CI_RUNS));
