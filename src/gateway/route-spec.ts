// One table of route specs drives both the routes (auth, then params, query, headers and body
// validated by @hono/zod-openapi before a handler runs) and the OpenAPI document the library
// generates from them: a route cannot exist without being documented. `defineRoute` adds what the
// library has no word for: who may call (auth, instrument keys) and the body's size and depth bounds.

import { zodToOpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { createRoute, OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { z, type ZodObject } from 'zod';
import * as api from '../protocol/api';
import { ErrorDoc } from '../protocol/api';
import { ERROR_CODES, FerryError, type ErrorCode } from '../protocol/errors';
import type { EndpointTokenClaims } from '../protocol/tokens';
import { authenticateEndpoint, authenticateEndpointSecret, authenticateUser, type Defer, type UserPrincipal } from './auth';
import { checkKeyAction, checkKeyResources, isKeyToken, type KeyGrant, type KeyRule } from './auth/keys';
import { maxRequestBytes, type GatewayEnv } from './env';
import { authenticateReader, authenticateWriter, type ReaderPrincipal, type WriterPrincipal } from './reader-auth';
import { validationError } from './http-errors';
import { parseJsonText, readBodyText } from './request-body';

type ResponseConfig = RouteConfig['responses'][string];

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';
/** Who may call: anyone, a user token's owner, or an endpoint agent with an endpoint access token;
 * `endpoint-secret`: the endpoint's secret (only to exchange it for access tokens);
 * `reader`: a user token, or an endpoint access token reading for the endpoint's owner;
 * `writer`: the same, storing objects for the owner (an agent's results by reference). */
export type AuthKind = 'none' | 'user' | 'endpoint' | 'endpoint-secret' | 'reader' | 'writer';

export type GatewayHono = OpenAPIHono<{ Bindings: GatewayEnv }>;
export type GatewayContext = Context<{ Bindings: GatewayEnv }>;

type Schema = z.ZodType;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteSpec<
  A extends AuthKind = AuthKind,
  P extends Schema | undefined = Schema | undefined,
  Q extends Schema | undefined = Schema | undefined,
  B extends Schema | undefined = Schema | undefined,
  H extends Schema | undefined = Schema | undefined,
> {
  method: HttpMethod;
  /** OpenAPI style: `/v2/tasks/{task_id}`. */
  path: string;
  summary: string;
  auth: A;
  /** Path parameters. A value that does not match answers 404: an id that cannot exist names nothing. */
  params?: P;
  query?: Q;
  body?: B;
  /** Request headers the route reads, by lower-case name; a value that does not match answers 400. */
  headers?: H;
  /** The 200 answer (absent for the agent socket, which only upgrades). */
  response?: Schema;
  /** Other success answers (202 of /v3/run, 101 of the agent socket). */
  otherResponses?: ReadonlyArray<{ status: number; description: string; schema?: Schema }>;
  /** Error codes the route itself raises; auth and body codes are added from `auth` and `body`. */
  errors: readonly ErrorCode[];
  /** A request body example. `{name}` placeholders stand for path parameter values of the same name. */
  example?: unknown;
  /** A query string example for a route that needs one (`task_group_id={task_group_id}`), placeholders as in `example`. */
  queryExample?: string;
  /**
   * What an instrument key needs to call this route: `'none'` (keys are refused), or an action and
   * the endpoints and functions the request touches, which must be in the key's scopes. Absent is
   * `'none'`; the key-scope test requires every route a key could reach to say which.
   */
  keys?: KeyRule<RouteInput<A, P, Q, B, H>>;
}

export interface Principal {
  user: UserPrincipal;
  endpoint: EndpointTokenClaims;
  'endpoint-secret': EndpointTokenClaims;
  reader: ReaderPrincipal;
  writer: WriterPrincipal;
  none: null;
}

export interface RouteInput<A extends AuthKind, P, Q, B, H = undefined> {
  principal: Principal[A];
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  headers: Out<H>;
}

export interface RouteTable {
  readonly hono: GatewayHono;
  readonly specs: RouteSpec[];
}

export function createRouteTable(hono: GatewayHono): RouteTable {
  return { hono, specs: [] };
}

/** The gateway's Hono app: @hono/zod-openapi validates each route's params, query, headers and body. */
export function createGatewayHono(): GatewayHono {
  const hono = new OpenAPIHono<{ Bindings: GatewayEnv }>({ defaultHook: refuseInvalid });
  hono.openAPIRegistry.registerComponent('securitySchemes', 'userToken', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A user token (the gateway key or the OIDC issuer).' });
  hono.openAPIRegistry.registerComponent('securitySchemes', 'endpointToken', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A short-lived endpoint access token from POST /v3/endpoints/{endpoint_id}/token.' });
  hono.openAPIRegistry.registerComponent('securitySchemes', 'endpointSecret', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "An endpoint's secret token from POST /v3/endpoints (only exchanged for access tokens)." });
  return hono;
}

// Schemas of src/protocol/api.ts are named components by their export name, so recursive ones
// (JsonValue) stay references. Named on the schemas themselves, not on copies, so every route's
// use of one is a $ref to it.
const refIds = new Map<z.ZodType, string>();
for (const [name, value] of Object.entries(api)) {
  if (value instanceof z.ZodType && !refIds.has(value)) {
    refIds.set(value, name);
    zodToOpenAPIRegistry.add(value, { _internal: { refId: name } });
  }
}

/**
 * @asteasolutions/zod-to-openapi documents a record's values but not its keys: a record keyed by
 * something narrower than any string (SubmitRequest's tasks, keyed by function UUID) is given
 * `propertyNames`, as JSON Schema says it.
 */
function documentRecordKeys(schema: z.ZodType, seen = new Set<z.ZodType>()): void {
  if (seen.has(schema)) return;
  seen.add(schema);
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
  if (def.type === 'record') {
    const key = def.keyType as z.ZodType;
    const keyName = refIds.get(key);
    const plain = key instanceof z.ZodString && (key._zod.def.checks ?? []).length === 0;
    if (!plain && !zodToOpenAPIRegistry.has(schema)) {
      zodToOpenAPIRegistry.add(schema, { propertyNames: keyName ? { $ref: `#/components/schemas/${keyName}` } : z.toJSONSchema(key, { io: 'input', unrepresentable: 'any' }) });
    }
  }
  for (const child of Object.values(def).flatMap((v) => (Array.isArray(v) ? v : v && typeof v === 'object' && !(v instanceof z.ZodType) ? Object.values(v) : [v]))) {
    if (child instanceof z.ZodType) documentRecordKeys(child, seen);
  }
  if (def.type === 'lazy') documentRecordKeys((def.getter as () => z.ZodType)(), seen);
}

type HookResult = { success: boolean; target: string; error?: z.ZodError };

/**
 * What a request that fails a route's schemas is answered (@hono/zod-openapi's default hook): a path
 * parameter that does not match names nothing (404); query, headers and body answer
 * VALIDATION_ERROR; a body the bounded reader refused answers with its own code (413, INVALID_JSON).
 */
function refuseInvalid(result: HookResult, c: GatewayContext): void {
  const bodyFault = result.target === 'json' ? bodyFaults.get(c) : undefined;
  if (bodyFault) throw bodyFault;
  if (result.success) return;
  if (result.target === 'param') throw new FerryError('NOT_FOUND');
  throw validationError(result.error!, result.target === 'query' ? 'query' : result.target === 'header' ? 'headers' : '');
}

/** The codes a route can answer, its own plus those implied by its auth and body. */
function errorCodesOf(spec: RouteSpec): ErrorCode[] {
  const codes = new Set<ErrorCode>(spec.errors);
  if (spec.auth !== 'none') {
    codes.add('UNAUTHORIZED');
    if (spec.auth === 'user' || spec.auth === 'reader' || spec.auth === 'writer' || spec.auth === 'endpoint') codes.add('TOKEN_EXPIRED');
    // Endpoint secrets, instrument keys and the tokens a user revoked.
    codes.add('TOKEN_REVOKED');
    codes.add('FORBIDDEN_SCOPE');
  }
  if (spec.params) codes.add('NOT_FOUND');
  if (spec.query || spec.headers) codes.add('VALIDATION_ERROR');
  if (spec.body) {
    codes.add('PAYLOAD_TOO_LARGE');
    codes.add('INVALID_JSON');
    codes.add('VALIDATION_ERROR');
  }
  return [...codes];
}

export function honoPath(path: string): string {
  return path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
}

function operationId(spec: Pick<RouteSpec, 'method' | 'path'>): string {
  return `${spec.method}${spec.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`;
}

function deferOf(c: GatewayContext): Defer {
  return (work) => {
    const settled = work.catch(() => undefined);
    try {
      c.executionCtx.waitUntil(settled);
    } catch {
      // No execution context (an in-process call): the work still runs, unawaited.
    }
  };
}

async function principalOf(c: GatewayContext, auth: AuthKind): Promise<Principal[AuthKind]> {
  const header = c.req.header('authorization');
  if (auth === 'user') return authenticateUser(c.env, header, deferOf(c));
  if (auth === 'reader') return authenticateReader(c.env, header, deferOf(c));
  if (auth === 'writer') return authenticateWriter(c.env, header, deferOf(c));
  if (auth === 'none') return null;
  // An instrument key is no endpoint token: say what it is refused for, not that it is malformed.
  const token = header ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
  if (token && isKeyToken(token)) throw new FerryError('FORBIDDEN_SCOPE', 'instrument keys cannot call endpoint agent routes');
  if (auth === 'endpoint') return authenticateEndpoint(c.env, header);
  return authenticateEndpointSecret(c.env, header);
}

function keyOf(principal: unknown): KeyGrant | undefined {
  return (principal as { key?: KeyGrant } | null)?.key;
}

/** The principal each request's auth step found, for its handler (the validators run between them). */
const principals = new WeakMap<GatewayContext, unknown>();

const JSON_MEDIA_TYPE = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/** A body the bounded reader refused (413, INVALID_JSON, too deep), for the hook to answer with. */
const bodyFaults = new WeakMap<GatewayContext, FerryError>();
const REFUSED_BODY = Symbol('refused body');

/**
 * The library's body validator asks `c.req.json()` for the body, after the path, query and header
 * validators. Here that reads it under the byte cap and the nesting bound (request-body.ts) and
 * parses it once, whatever its Content-Type says; a refusal is kept for the hook to answer with
 * (the validator would turn a throw into its own 400). A request without a JSON Content-Type is
 * given one, or the library would answer 415 or validate `{}` in place of the body.
 */
function readJsonBodyWhenAsked(c: GatewayContext): void {
  const raw = c.req.raw;
  const maxBytes = maxRequestBytes(c.env);
  (c.req as { json: () => Promise<unknown> }).json = async () => {
    try {
      return parseJsonText(await readBodyText(raw, maxBytes));
    } catch (err) {
      if (!(err instanceof FerryError)) throw err;
      bodyFaults.set(c, err);
      return REFUSED_BODY;
    }
  };
  if (!JSON_MEDIA_TYPE.test(c.req.header('content-type') ?? '')) {
    const headers = new Headers(raw.headers);
    headers.set('content-type', 'application/json');
    c.req.raw = new Request(raw.url, { method: raw.method, headers, signal: raw.signal });
  }
}

const SECURITY: Record<AuthKind, Array<Record<string, string[]>>> = {
  none: [],
  user: [{ userToken: [] }],
  endpoint: [{ endpointToken: [] }],
  'endpoint-secret': [{ endpointSecret: [] }],
  reader: [{ userToken: [] }, { endpointToken: [] }],
  writer: [{ userToken: [] }, { endpointToken: [] }],
};

function errorResponses(codes: readonly ErrorCode[]): Record<string, ResponseConfig> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, ResponseConfig> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[String(status)] = {
      description: list.map((code) => `${code}: ${ERROR_CODES[code].message}`).join('; '),
      content: { 'application/json': { schema: ErrorDoc } },
    };
  }
  return out;
}

/** The route as @hono/zod-openapi declares it: what the OpenAPI document says of it. */
function routeConfigOf(spec: RouteSpec, middleware: MiddlewareHandler[]): RouteConfig {
  for (const schema of [spec.params, spec.query, spec.headers, spec.body, spec.response, ...(spec.otherResponses ?? []).map((o) => o.schema)]) if (schema) documentRecordKeys(schema);
  const responses: Record<string, ResponseConfig> = {};
  if (spec.response) responses['200'] = { description: 'OK', content: { 'application/json': { schema: spec.response } } };
  for (const other of spec.otherResponses ?? []) {
    responses[String(other.status)] = other.schema ? { description: other.description, content: { 'application/json': { schema: other.schema } } } : { description: other.description };
  }
  Object.assign(responses, errorResponses(errorCodesOf(spec)));
  return createRoute({
    method: spec.method,
    path: spec.path,
    operationId: operationId(spec),
    summary: spec.summary,
    security: SECURITY[spec.auth],
    'x-ferry-auth': spec.auth,
    ...(spec.queryExample === undefined ? {} : { 'x-ferry-query-example': spec.queryExample }),
    // What an instrument key needs to call it (none: keys are refused).
    'x-ferry-key-action': spec.keys === undefined || spec.keys === 'none' ? 'none' : spec.keys.action,
    request: {
      ...(spec.params ? { params: spec.params as ZodObject } : {}),
      ...(spec.query ? { query: spec.query as ZodObject } : {}),
      ...(spec.headers ? { headers: spec.headers as ZodObject } : {}),
      ...(spec.body ? { body: { required: true, content: { 'application/json': { schema: spec.body, ...(spec.example === undefined ? {} : { example: spec.example }) } } } } : {}),
    },
    responses,
    middleware,
  } as RouteConfig);
}

export function defineRoute<
  A extends AuthKind,
  P extends Schema | undefined = undefined,
  Q extends Schema | undefined = undefined,
  B extends Schema | undefined = undefined,
  H extends Schema | undefined = undefined,
>(
  table: RouteTable,
  spec: RouteSpec<A, P, Q, B, H>,
  handler: (c: GatewayContext, input: RouteInput<A, P, Q, B, H>) => Promise<unknown> | unknown,
): void {
  const general = spec as unknown as RouteSpec;
  table.specs.push(general);
  const keyRule = spec.keys as KeyRule<unknown> | undefined;
  const what = `${spec.method.toUpperCase()} ${spec.path}`;
  // Before the library's validators: who calls, and whether a key may; the body is read when its validator asks.
  const authenticate: MiddlewareHandler<{ Bindings: GatewayEnv }> = async function authenticate(c, next) {
    const principal = await principalOf(c, spec.auth);
    const key = keyOf(principal);
    if (key) checkKeyAction(key, keyRule, what);
    principals.set(c, principal);
    if (spec.body) readJsonBodyWhenAsked(c);
    await next();
  };
  const route = routeConfigOf(general, [authenticate as MiddlewareHandler]);
  const valid = (c: GatewayContext, target: 'param' | 'query' | 'header' | 'json') => (c.req as unknown as { valid(t: string): unknown }).valid(target);
  const run = async function validatedRoute(c: GatewayContext): Promise<Response> {
    const principal = principals.get(c) as Principal[A];
    const input = {
      principal,
      params: spec.params ? valid(c, 'param') : undefined,
      query: spec.query ? valid(c, 'query') : undefined,
      body: spec.body ? valid(c, 'json') : undefined,
      headers: spec.headers ? valid(c, 'header') : undefined,
    } as RouteInput<A, P, Q, B, H>;
    const key = keyOf(principal);
    if (key && spec.keys) checkKeyResources(key, spec.keys, input);
    const result = await handler(c, input);
    return result instanceof Response ? result : c.json(result as object);
  };
  // The library checks the query before the path; a path that names nothing answers 404 first, as the query's 400 would hide it.
  const params = spec.params;
  const hook = params && spec.query ? (result: HookResult, c: GatewayContext) => {
    if (!result.success && result.target === 'query' && !params.safeParse(c.req.param()).success) throw new FerryError('NOT_FOUND');
    refuseInvalid(result, c);
  } : undefined;
  (table.hono.openapi as unknown as (route: RouteConfig, handler: (c: GatewayContext) => Promise<Response>, hook?: (result: HookResult, c: GatewayContext) => void) => void)(route, run, hook);
}

/** The OpenAPI 3.1 document of every route declared on the app: @hono/zod-openapi's output, normalised. */
export function openApiDocument(hono: GatewayHono, version: string): object {
  const document = hono.getOpenAPI31Document({
    openapi: '3.1.0',
    info: { title: 'Ferry gateway', version, description: 'A federated function service. Errors are {code, message, details?}.' },
  });
  return normalised(document, false) as object;
}

/**
 * Three repairs to the generator's output (@asteasolutions/zod-to-openapi 9.1.0). A nullable
 * schema it references becomes `oneOf: [{$ref}, {type: 'null'}]`; when the referenced schema admits
 * null itself (JsonValue), null matches both and `oneOf` refuses it, so this is `anyOf`, which is
 * what it means. A named schema made nullable (`UserId.nullable()`) becomes
 * `allOf: [{$ref}, {type: [T, 'null']}]`, which refuses null: also `anyOf` with null. And a
 * parameter's schema loses `null` from its types (z.coerce.number() accepts null, but a path,
 * query or header value is a string: it is never JSON null).
 */
function normalised(node: unknown, inParameter: boolean): unknown {
  if (Array.isArray(node)) return node.map((item) => normalised(item, inParameter));
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = normalised(value, inParameter || key === 'parameters');
  const oneOf = out.oneOf as unknown[] | undefined;
  if (oneOf?.length === 2 && (oneOf[1] as { type?: unknown }).type === 'null' && typeof (oneOf[0] as { $ref?: unknown }).$ref === 'string') {
    delete out.oneOf;
    out.anyOf = oneOf;
  }
  const allOf = out.allOf as Array<Record<string, unknown>> | undefined;
  if (allOf?.length === 2 && typeof allOf[0]!.$ref === 'string' && Object.keys(allOf[1]!).join() === 'type' && Array.isArray(allOf[1]!.type) && allOf[1]!.type.includes('null')) {
    delete out.allOf;
    out.anyOf = [allOf[0], { type: 'null' }];
  }
  if (inParameter && Array.isArray(out.type) && out.type.includes('null')) {
    const types = out.type.filter((t) => t !== 'null');
    out.type = types.length === 1 ? types[0] : types;
  }
  return out;
}

/** A JSON answer from text the caller already holds (a hub's pre-encoded task doc), unparsed. */
export function jsonText(text: string, status = 200): Response {
  return new Response(text, { status, headers: { 'content-type': 'application/json' } });
}
