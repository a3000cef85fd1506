// How tasks enter a hub: a batch the gateway validated, checked against ownership, guests' grants
// and the allow-list, stored with its outbox rows in one transaction (and, with an Idempotency-Key,
// the answer to a key sent again), then dispatched to the agent if it has credits.

import { endpointOfId } from '../../protocol/ids';
import { isFinal } from '../../protocol/task-state';
import { traceHop } from '../../protocol/trace';
import { fail, ok, type HubReply } from '../hub-reply';
import { randomSuffix, taskSuffixes } from '../random-ids';
import type { AgentChannel } from './agent-channel';
import type { RunOutcome, Submission, Submitted } from './hub-api';
import { nowSeconds, type HubState } from './hub-state';
import type { KeyedSubmission } from './submit-keys';
import type { TaskOutcomes } from './task-outcomes';

export class TaskIntake {
  /** Keyed submissions being stored, by owner and key. */
  private readonly keyedInFlight = new Map<string, Promise<HubReply<KeyedSubmission>>>();

  constructor(
    private readonly hub: HubState,
    private readonly outcomes: TaskOutcomes,
    private readonly channel: AgentChannel,
  ) {}

  async submit(owner: string, submission: Submission): Promise<HubReply<Submitted>> {
    const idempotency = submission.idempotency;
    if (!idempotency) return this.storeSubmission(owner, submission);
    // Keys are the submitter's own: two owners' equal keys name different requests.
    const key = `${owner}\n${idempotency.key}`;
    // The same key while its first request is still being stored: the answer is that request's.
    const inFlight = this.keyedInFlight.get(key);
    if (inFlight) return this.replay(await inFlight, idempotency.fingerprint);
    const stored = this.hub.live() ? this.hub.submitKeys.find(key, nowSeconds()) : null;
    if (stored) return this.replay(ok(stored), idempotency.fingerprint);
    const storing = this.storeSubmission(owner, submission, { key, fingerprint: idempotency.fingerprint }).then((reply) =>
      reply.ok ? ok({ ...reply.value, fingerprint: idempotency.fingerprint }) : reply,
    );
    this.keyedInFlight.set(key, storing);
    try {
      return this.replay(await storing, idempotency.fingerprint);
    } finally {
      this.keyedInFlight.delete(key);
    }
  }

  /** A keyed submission's answer, unless the key came back with another request. */
  private replay(reply: HubReply<KeyedSubmission>, fingerprint: string): HubReply<Submitted> {
    if (!reply.ok) return reply;
    if (reply.value.fingerprint !== fingerprint) {
      return fail('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with another request; use a new key for a new request');
    }
    return ok({ task_group_id: reply.value.task_group_id, task_ids: reply.value.task_ids, request_id: reply.value.request_id });
  }

  /** Stores the tasks and queues them; with `keyed` (the owner-scoped key), remembers the answer in the same transaction. */
  private async storeSubmission(owner: string, submission: Submission, keyed?: { key: string; fingerprint: string }): Promise<HubReply<Submitted>> {
    const record = this.hub.live();
    if (!record) return fail('NOT_FOUND', 'endpoint not found');
    // The owner's own functions (the common case) pass without a lookup; a guest's grant is cached.
    if (record.owner !== owner || submission.foreign) {
      const refused = await this.hub.guard.check(record, owner, submission.functions.map((f) => f.function_uuid), submission.foreign);
      if (refused) {
        this.hub.auditLog.refused(owner, { action: 'submit', reason: refused.reason, ...(refused.function_uuid ? { function_uuid: refused.function_uuid } : {}) });
        return refused.refusal;
      }
      const ref = record.owner !== owner ? this.hub.guard.objectRefIn(submission.tasks) : null;
      if (ref !== null) {
        this.hub.auditLog.refused(owner, { action: 'submit', reason: 'object_ref' });
        return fail('FORBIDDEN', 'a guest passes data inline or as file:// references: objects are read with the endpoint owner\'s credentials', { reason: 'guest_object_ref' });
      }
    }
    if (submission.key_id !== undefined) this.hub.auditLog.keyUsed(owner, submission.key_id);
    if (record.allowed_functions) {
      const allowed = new Set(record.allowed_functions);
      const refused = submission.functions.find((f) => !allowed.has(f.function_uuid));
      if (refused) return fail('FUNCTION_NOT_PERMITTED', `function ${refused.function_uuid} is not in the endpoint's allowed_functions`, { function_uuid: refused.function_uuid });
    }
    let groupId = submission.task_group_id;
    let newGroup = false;
    if (groupId !== undefined) {
      const groupEndpoint = endpointOfId(groupId);
      if (groupEndpoint === null) return fail('INVALID_ID', 'task_group_id is malformed');
      if (groupEndpoint !== record.endpoint_id) return fail('INVALID_ID', 'task_group_id belongs to another endpoint');
      if (!(await this.hub.store.groupExists(groupId))) return fail('NOT_FOUND', 'task group not found');
    } else {
      groupId = `${record.endpoint_id}.${randomSuffix()}`;
      newGroup = true;
    }
    const createdAt = nowSeconds();
    const suffixes = taskSuffixes(submission.tasks.length);
    const rs = submission.resource_specification_json;
    const taskIds: string[] = new Array(submission.tasks.length);
    const tasks: Array<{ task_id: string; function_uuid: string }> = new Array(submission.tasks.length);
    const outboxRows: Array<{ task_id: string; function_uuid: string; message: string }> = new Array(submission.tasks.length);
    for (let i = 0; i < submission.tasks.length; i++) {
      const task = submission.tasks[i]!;
      const taskId = `${record.endpoint_id}.${suffixes[i]}`;
      taskIds[i] = taskId;
      tasks[i] = { task_id: taskId, function_uuid: task.function_uuid };
      const traced = submission.trace ? ',"trace":[]' : '';
      const message = `{"task_id":"${taskId}","function_uuid":"${task.function_uuid}","payload":${task.payload_json}${rs === undefined ? '' : `,"resource_specification":${rs}`}${traced}}`;
      outboxRows[i] = { task_id: taskId, function_uuid: task.function_uuid, message };
    }
    await this.hub.store.createTasks(
      {
        task_group_id: groupId,
        new_group: newGroup,
        request_id: submission.request_id,
        created_at: createdAt,
        workflow_id: submission.workflow_id ?? null,
        campaign_id: submission.campaign_id ?? null,
        resource_specification_json: rs ?? null,
        tasks,
        owner,
        ...(owner === record.owner ? {} : { submitter: owner }),
      },
      () => {
        this.hub.outbox.saveFunctions(submission.functions);
        this.hub.outbox.enqueue(outboxRows);
        if (keyed) {
          this.hub.submitKeys.record(keyed.key, { fingerprint: keyed.fingerprint, request_id: submission.request_id, task_group_id: groupId, task_ids: taskIds }, createdAt);
        }
      },
    );
    if (submission.trace) {
      traceHop(submission.trace, 'hub.stored', Date.now());
      this.outcomes.traces.set(taskIds[0]!, submission.trace);
    }
    this.channel.dispatch();
    await this.channel.sweep.arm();
    return ok({ task_group_id: groupId, task_ids: taskIds, request_id: submission.request_id });
  }

  /** Submits one task and holds the answer until it ends or `waitMs` passes. */
  async run(owner: string, submission: Submission, waitMs: number): Promise<HubReply<RunOutcome>> {
    traceHop(submission.trace, 'hub.received', Date.now());
    const submitted = await this.submit(owner, submission);
    if (!submitted.ok) return submitted;
    const taskId = submitted.value.task_ids[0]!;
    const { record, doc } = await this.outcomes.awaitDoc(taskId, waitMs);
    const outcome: RunOutcome = { task_id: taskId, final: record !== null && isFinal(record.state), doc: doc ?? '' };
    const trace = this.outcomes.traces.get(taskId);
    if (trace) {
      this.outcomes.traces.delete(taskId);
      traceHop(trace, 'hub.answered', Date.now());
      outcome.trace = trace;
    }
    return ok(outcome);
  }
}
