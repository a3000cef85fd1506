// TaskOutcomes on a real Durable Object's storage and R2 (test/helpers/hub-parts.ts): results end
// tasks and wake their waiters, a large result goes to the object store, a result sent again counts
// an attempt without changing the outcome, and a cancel wins only over a task still open.

import { expect, it } from 'vitest';
import type { Json } from '../../protocol/api';
import { withHub } from '../../../test/helpers/hub-parts';
import { resultObjectKey } from './task-doc-json';

const success = (task_id: string, result: Json) => ({ task_id, status: 'success' as const, result });

it('a result ends its task and answers a client already waiting for it', async () => {
  const doc = await withHub(async (hub) => {
    const [id] = await hub.submit([{ args: [1, 2] }]);
    const waiting = hub.outcomes.awaitDoc(id!, 20_000);
    await hub.outcomes.record([success(id!, 3)]);
    return JSON.parse((await waiting).doc!);
  });
  expect(doc.status).toBe('success');
  expect(doc.result).toBe(3);
  expect(doc.details.attempts).toBe(1);
});

it('a result over the inline limit is written to the object store and served in the doc', async () => {
  const big = 'x'.repeat(70 * 1024);
  const seen = await withHub(async (hub) => {
    const [id] = await hub.submit([{ args: [1, 2] }]);
    await hub.outcomes.record([success(id!, big)]);
    const stored = await hub.state.env.OBJECTS.get(resultObjectKey(id!));
    return { stored: stored ? JSON.parse(await stored.text()) : null, doc: JSON.parse((await hub.outcomes.awaitDoc(id!, 0)).doc!) };
  });
  expect(seen.stored).toBe(big);
  expect(seen.doc.result).toBe(big);
});

it('a result sent again counts an attempt and keeps the first outcome', async () => {
  const doc = await withHub(async (hub) => {
    const [id] = await hub.submit([{ args: [1, 2] }]);
    await hub.outcomes.record([success(id!, 3)]);
    await hub.outcomes.record([success(id!, 4)]);
    return JSON.parse((await hub.outcomes.awaitDoc(id!, 0)).doc!);
  });
  expect(doc.result).toBe(3);
  expect(doc.details.attempts).toBe(2);
});

it('a cancel ends an open task; a task already ended refuses it', async () => {
  const seen = await withHub(async (hub) => {
    const [open, done] = await hub.submit([{ args: [1] }, { args: [2] }]);
    await hub.outcomes.record([success(done!, 2)]);
    const cancelled = await hub.outcomes.cancel(open!);
    const refused = await hub.outcomes.cancel(done!);
    // The cancelled task's result arrives late: an extra attempt, still cancelled.
    await hub.outcomes.record([success(open!, 1)]);
    return { cancelled, refused, late: JSON.parse((await hub.outcomes.awaitDoc(open!, 0)).doc!) };
  });
  expect(seen.cancelled.ok && JSON.parse(seen.cancelled.value).status).toBe('cancelled');
  expect(!seen.refused.ok && seen.refused.error.code).toBe('TASK_ALREADY_FINISHED');
  expect(seen.late.status).toBe('cancelled');
});
