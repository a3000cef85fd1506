// A task's lineage record for tests that need one without a gateway: a successful task of alice's
// in workflow wf-1, every other field empty, with `fields` over it.

import type { TaskLineage } from '../../src/provenance/prov-document';

export function taskRecord(fields: Partial<TaskLineage> = {}): TaskLineage {
  return {
    task_id: '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b.mibx3k2a00001abcdefghijk',
    source: 'ferry',
    owner: 'alice',
    endpoint_id: '0f8e7c1a-3b2d-4e5f-8a9b-0c1d2e3f4a5b',
    function_uuid: null,
    activity_id: null,
    workflow_id: 'wf-1',
    campaign_id: null,
    task_group_id: null,
    status: 'success',
    attempts: 1,
    transitions: {},
    started_at: null,
    ended_at: null,
    hostname: null,
    used: [],
    generated: [],
    ...fields,
  };
}
