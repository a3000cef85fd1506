// Builds the OpenAPI 3.1 document from the route table. Schemas of src/protocol/api.ts become named
// components (zod 4's registry output), so recursive ones such as JsonValue stay references.

import { z } from 'zod';
import * as api from '../protocol/api';
import { ERROR_CODES, type ErrorCode } from '../protocol/errors';
import { errorCodesOf, type RouteSpec } from './route-spec';

type JsonObject = Record<string, unknown>;

const COMPONENT_URI = (id: string) => `#/components/schemas/${id}`;

export function operationId(spec: RouteSpec): string {
  return `${spec.method}${spec.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`;
}

function stripSchemaHeader(schema: JsonObject): JsonObject {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

/** Names every schema the routes use: protocol schemas by their export name, others by operation. */
function buildComponents(specs: readonly RouteSpec[]): { components: Record<string, JsonObject>; nameOf: Map<z.ZodType, string> } {
  const registry = z.registry<{ id: string }>();
  const nameOf = new Map<z.ZodType, string>();
  const add = (schema: z.ZodType, name: string) => {
    if (nameOf.has(schema)) return;
    nameOf.set(schema, name);
    registry.add(schema, { id: name });
  };
  for (const [name, value] of Object.entries(api)) {
    if (value instanceof z.ZodType) add(value, name);
  }
  for (const spec of specs) {
    const op = operationId(spec);
    if (spec.body) add(spec.body, `${op}Body`);
    if (spec.response) add(spec.response, `${op}Response`);
    for (const other of spec.otherResponses ?? []) if (other.schema) add(other.schema, `${op}Response${other.status}`);
  }
  const out = z.toJSONSchema(registry, { uri: COMPONENT_URI, io: 'input', unrepresentable: 'any' }) as { schemas: Record<string, JsonObject> };
  const components: Record<string, JsonObject> = {};
  for (const [name, schema] of Object.entries(out.schemas)) components[name] = stripSchemaHeader(schema);
  return { components, nameOf };
}

function parameters(spec: RouteSpec): JsonObject[] {
  const list: JsonObject[] = [];
  for (const [where, schema] of [['path', spec.params], ['query', spec.query], ['header', spec.headers]] as const) {
    if (!(schema instanceof z.ZodObject)) continue;
    for (const [name, field] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
      list.push({
        name,
        in: where,
        required: where === 'path' || !field.safeParse(undefined).success,
        schema: stripSchemaHeader(z.toJSONSchema(field, { io: 'input', unrepresentable: 'any' }) as JsonObject),
      });
    }
  }
  return list;
}

function errorResponses(codes: readonly ErrorCode[]): Record<string, JsonObject> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, JsonObject> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[String(status)] = {
      description: list.map((code) => `${code}: ${ERROR_CODES[code].message}`).join('; '),
      content: { 'application/json': { schema: { $ref: COMPONENT_URI('ErrorDoc') } } },
    };
  }
  return out;
}

export function buildOpenApiDocument(specs: readonly RouteSpec[], version: string): JsonObject {
  const { components, nameOf } = buildComponents(specs);
  const ref = (schema: z.ZodType) => ({ $ref: COMPONENT_URI(nameOf.get(schema)!) });
  const paths: Record<string, Record<string, JsonObject>> = {};
  for (const spec of specs) {
    const responses: Record<string, JsonObject> = {};
    if (spec.response) responses['200'] = { description: 'OK', content: { 'application/json': { schema: ref(spec.response) } } };
    for (const other of spec.otherResponses ?? []) {
      responses[String(other.status)] = other.schema ? { description: other.description, content: { 'application/json': { schema: ref(other.schema) } } } : { description: other.description };
    }
    Object.assign(responses, errorResponses(errorCodesOf(spec)));
    const operation: JsonObject = {
      operationId: operationId(spec),
      summary: spec.summary,
      security: spec.auth === 'none' ? [] : spec.auth === 'reader' || spec.auth === 'writer' ? [{ userToken: [] }, { endpointToken: [] }] : [{ [spec.auth === 'user' ? 'userToken' : spec.auth === 'endpoint-secret' ? 'endpointSecret' : 'endpointToken']: [] }],
      'x-ferry-auth': spec.auth,
      ...(spec.queryExample === undefined ? {} : { 'x-ferry-query-example': spec.queryExample }),
      parameters: parameters(spec),
      responses,
    };
    if (spec.body) {
      operation.requestBody = {
        required: true,
        content: { 'application/json': { schema: ref(spec.body), ...(spec.example === undefined ? {} : { example: spec.example }) } },
      };
    }
    (paths[spec.path] ??= {})[spec.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Ferry gateway', version, description: 'A federated function service. Errors are {code, message, details?}.' },
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        userToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A user token (the gateway key or the OIDC issuer).' },
        endpointToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A short-lived endpoint access token from POST /v3/endpoints/{endpoint_id}/token.' },
        endpointSecret: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "An endpoint's secret token from POST /v3/endpoints (only exchanged for access tokens)." },
      },
    },
  };
}
