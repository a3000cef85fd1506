// One table of route specs drives both the Hono routes (auth, params, query and body validated
// before a handler runs) and the OpenAPI document: a route cannot exist without being documented.

import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { FerryError, type ErrorCode } from '../protocol/errors';
import type { EndpointTokenClaims } from '../protocol/tokens';
import { authenticateEndpoint, authenticateEndpointSecret, authenticateUser } from './auth';
import { maxRequestBytes, type GatewayEnv } from './env';
import { authenticateReader, authenticateWriter, type ReaderPrincipal, type WriterPrincipal } from './reader-auth';
import { validationError } from './http-errors';
import { parseJsonText, readBodyText } from './request-body';

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';
/** Who may call: anyone, a user token's owner, or an endpoint agent with an endpoint access token;
 * `endpoint-secret`: the endpoint's secret (only to exchange it for access tokens);
 * `reader`: a user token, or an endpoint access token reading for the endpoint's owner;
 * `writer`: the same, storing objects for the owner (an agent's results by reference). */
export type AuthKind = 'none' | 'user' | 'endpoint' | 'endpoint-secret' | 'reader' | 'writer';

export type GatewayHono = Hono<{ Bindings: GatewayEnv }>;
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
}

export interface Principal {
  user: { owner: string };
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

/** The codes a route can answer, its own plus those implied by its auth and body. */
export function errorCodesOf(spec: RouteSpec): ErrorCode[] {
  const codes = new Set<ErrorCode>(spec.errors);
  if (spec.auth !== 'none') {
    codes.add('UNAUTHORIZED');
    if (spec.auth === 'user' || spec.auth === 'reader' || spec.auth === 'writer' || spec.auth === 'endpoint') codes.add('TOKEN_EXPIRED');
    if (spec.auth === 'endpoint' || spec.auth === 'endpoint-secret') codes.add('TOKEN_REVOKED');
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

async function principalOf(c: GatewayContext, auth: AuthKind): Promise<Principal[AuthKind]> {
  const header = c.req.header('authorization');
  if (auth === 'user') return { owner: await authenticateUser(c.env, header) };
  if (auth === 'endpoint') return authenticateEndpoint(c.env, header);
  if (auth === 'endpoint-secret') return authenticateEndpointSecret(c.env, header);
  if (auth === 'reader') return authenticateReader(c.env, header);
  if (auth === 'writer') return authenticateWriter(c.env, header);
  return null;
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
  table.specs.push(spec as unknown as RouteSpec);
  table.hono.on(spec.method.toUpperCase(), honoPath(spec.path), async function validatedRoute(c) {
    const principal = (await principalOf(c, spec.auth)) as Principal[A];
    let params: unknown;
    if (spec.params) {
      const parsed = spec.params.safeParse(c.req.param());
      if (!parsed.success) throw new FerryError('NOT_FOUND');
      params = parsed.data;
    }
    let query: unknown;
    if (spec.query) {
      const parsed = spec.query.safeParse(c.req.query());
      if (!parsed.success) throw validationError(parsed.error, 'query');
      query = parsed.data;
    }
    let headers: unknown;
    if (spec.headers) {
      const parsed = spec.headers.safeParse(c.req.header());
      if (!parsed.success) throw validationError(parsed.error, 'headers');
      headers = parsed.data;
    }
    let body: unknown;
    if (spec.body) {
      const text = await readBodyText(c.req.raw, maxRequestBytes(c.env));
      const parsed = spec.body.safeParse(parseJsonText(text));
      if (!parsed.success) throw validationError(parsed.error);
      body = parsed.data;
    }
    const result = await handler(c, { principal, params, query, body, headers } as RouteInput<A, P, Q, B, H>);
    return result instanceof Response ? result : c.json(result as object);
  });
}

/** A JSON answer from text the caller already holds (a hub's pre-encoded task doc), unparsed. */
export function jsonText(text: string, status = 200): Response {
  return new Response(text, { status, headers: { 'content-type': 'application/json' } });
}
