// GET /v3/events by task store: the default SQLite store streams; with TASK_STORE=redis (the
// gateway-redis project runs this file too) the stream answers 501 NOT_IMPLEMENTED, since nothing
// there records the order of changes (README: "Events").

import { env, exports } from 'cloudflare:workers';
import { expect, it } from 'vitest';
import { BASE, call, newUser, registerEndpoint, registerFunction, submit } from '../../../test/helpers/gateway';

it('streams with the SQLite store, and answers 501 NOT_IMPLEMENTED with Redis', async () => {
  const alice = await newUser();
  const fn = await registerFunction(alice);
  const ep = await registerEndpoint(alice);
  const { task_group_id } = await submit(alice, ep.endpoint_id, fn);
  const res = await exports.default.fetch(`${BASE}/v3/events?task_group_id=${task_group_id}`, { headers: { authorization: `Bearer ${alice.token}` } });
  if ((env as unknown as { TASK_STORE: string }).TASK_STORE === 'redis') {
    expect(res.status).toBe(501);
    expect(((await res.json()) as { code: string }).code).toBe('NOT_IMPLEMENTED');
  } else {
    expect(res.status).toBe(200);
    await res.body!.cancel();
  }
  // Another user's group is 404 whatever the store.
  const bob = await newUser('bob');
  const theirs = await call('get', `/v3/events?endpoint_id=${ep.endpoint_id}`, { token: bob.token });
  expect(theirs.status).toBe(404);
});
