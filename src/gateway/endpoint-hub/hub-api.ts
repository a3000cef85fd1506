// What routes see of an EndpointHub: the RPC surface (HubApi), what they pass it, and how they reach
// an endpoint's hub.

import type { FunctionSpec } from '../../protocol/wire';
import type { TraceHops } from '../../protocol/trace';
import type { GatewayEnv } from '../env';
import type { EndpointHub } from './endpoint-hub';
import type { ForeignFunctions } from './sharing-guard';

/** Headers by which the gateway tells the hub who opens the agent socket (already authenticated). */
export const AGENT_SOCKET_HEADERS = { endpointId: 'x-ferry-endpoint-id', owner: 'x-ferry-owner', generation: 'x-ferry-secret-gen' } as const;

/** A batch of tasks the gateway has validated; the hub checks ownership and the allow-list. */
export interface Submission {
  request_id: string;
  task_group_id?: string | undefined;
  workflow_id?: string | undefined;
  campaign_id?: string | undefined;
  resource_specification_json?: string | undefined;
  /** The code of every function the tasks name, resolved from the owner's registry. */
  functions: FunctionSpec[];
  /** Each payload already encoded as JSON text; it is spliced into the delivery message as is. */
  tasks: Array<{ function_uuid: string; payload_json: string }>;
  /** The client's `Idempotency-Key` and the digest of what it asked for (see submit-keys.ts). */
  idempotency?: { key: string; fingerprint: string } | undefined;
  /** A traced run (src/protocol/trace.ts): the gateway's hops so far. One task only. */
  trace?: TraceHops | undefined;
  /** Functions that are not the submitter's (shared with them, or granted on an endpoint): absent when all are theirs. */
  foreign?: ForeignFunctions | undefined;
  /** The instrument key that made the request (the audit log's key_used). */
  key_id?: string | undefined;
}

export interface Submitted {
  task_group_id: string;
  /** In the order of `Submission.tasks`. */
  task_ids: string[];
  /** The request that stored them: this one's, or, for a key sent again, the first one's. */
  request_id: string;
}

export interface RunOutcome {
  task_id: string;
  final: boolean;
  doc: string;
  /** A traced run's hops, the endpoint's between the hub's. */
  trace?: TraceHops;
}

/** What routes call on a hub. Declared plainly: the RPC stub's mapped types recurse without end on JsonValue. */
export type HubApi = Pick<EndpointHub, 'register' | 'update' | 'secretGeneration' | 'checkSecret' | 'revokeSecret' | 'describe' | 'status' | 'remove' | 'submit' | 'run' | 'taskDoc' | 'taskDocs' | 'taskGroup' | 'listTasks' | 'statusHistory' | 'cancel' | 'lineage' | 'lineageCount' | 'events' | 'holdsWorkflow' | 'sharingChanged' | 'credentialRevoked' | 'audit' | 'fetch'>;

export function hubOf(env: GatewayEnv, endpointId: string): HubApi {
  return env.ENDPOINT_HUB.get(env.ENDPOINT_HUB.idFromName(endpointId)) as unknown as HubApi;
}
