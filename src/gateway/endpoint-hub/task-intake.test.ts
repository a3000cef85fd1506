// TaskIntake on a real Durable Object (test/helpers/hub-parts.ts): a submission is stored with its
// outbox rows; an Idempotency-Key sent again answers with the first request's tasks, or is refused
// with another request; the endpoint's allow-list refuses other functions.

import { expect, it } from 'vitest';
import { withHub, OWNER, type Hub } from '../../../test/helpers/hub-parts';

function keyed(hub: Hub, fingerprint: string) {
  return hub.intake.submit(OWNER, {
    request_id: crypto.randomUUID(),
    functions: [{ function_uuid: hub.functionUuid, runtime: 'js', code: 'export default () => 1' }],
    tasks: [{ function_uuid: hub.functionUuid, payload_json: '{"args":[]}' }],
    idempotency: { key: 'k-1', fingerprint },
  });
}

it('stores a submission and queues its tasks; a key sent again answers with the first tasks, with another request it is refused', async () => {
  const seen = await withHub(async (hub) => {
    const first = await keyed(hub, 'fp-a');
    const again = await keyed(hub, 'fp-a');
    const other = await keyed(hub, 'fp-b');
    return { first, again, other, queued: hub.state.outbox.counts().queued };
  });
  expect(seen.first.ok && seen.again.ok && seen.again.value).toEqual(seen.first.ok && seen.first.value);
  expect(!seen.other.ok && seen.other.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  expect(seen.queued).toBe(1);
});

it("refuses a function that is not in the endpoint's allowed_functions", async () => {
  const refused = await withHub(async (hub) => {
    hub.state.register(OWNER, hub.endpointId, { endpoint_name: 'parts', allowed_functions: [crypto.randomUUID()] });
    return hub.submit([{ args: [] }]).then(
      () => null,
      (err: Error) => err.message,
    );
  });
  expect(refused).toBe('submit refused: FUNCTION_NOT_PERMITTED');
});
