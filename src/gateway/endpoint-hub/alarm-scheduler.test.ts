// The hub's one alarm over its timed duties, on a Durable Object's real storage: the alarm is set
// to the earliest due duty, a duty due later is not run early and keeps the alarm set for it, and a
// duty whose due time this instance does not know (after a wake) runs at the next alarm.

import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { expect, it } from 'vitest';
import type { GatewayEnv } from '../env';
import { AlarmScheduler } from './alarm-scheduler';

type Duty = 'soon' | 'later';

/** A scheduler over a fresh hub's storage, with duties that log their runs; `work` runs inside the object. */
function withScheduler<T>(work: (scheduler: AlarmScheduler<Duty>, ran: Duty[], storage: DurableObjectStorage) => Promise<T>): Promise<T> {
  const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
  return runInDurableObject(ns.get(ns.newUniqueId()), async (_instance, state) => {
    await state.storage.deleteAlarm();
    const ran: Duty[] = [];
    const duty = (name: Duty) => [name, async () => void ran.push(name)] as const;
    return work(new AlarmScheduler<Duty>(state.storage, [duty('soon'), duty('later')]), ran, state.storage);
  });
}

it('sets the alarm to the earliest duty, whichever was scheduled first', async () => {
  const at = await withScheduler(async (scheduler, _ran, storage) => {
    const now = Date.now();
    await scheduler.schedule('later', now + 60_000);
    await scheduler.schedule('soon', now + 5_000);
    const alarm = await storage.getAlarm();
    // A duty already due in the future keeps its time (no storage read): the alarm stays.
    await scheduler.schedule('soon', now + 1_000);
    return { now, alarm, again: await storage.getAlarm(), soon: scheduler.dueAt('soon'), later: scheduler.dueAt('later') };
  });
  expect(at.alarm).toBe(at.now + 5_000);
  expect(at.again).toBe(at.now + 5_000);
  expect(at.soon).toBe(at.now + 5_000);
  expect(at.later).toBe(at.now + 60_000);
});

it('a duty scheduled after a sooner alarm is due at that alarm', async () => {
  const seen = await withScheduler(async (scheduler, _ran, storage) => {
    const now = Date.now();
    await storage.setAlarm(now + 1_000);
    await scheduler.schedule('soon', now + 5_000);
    return { now, alarm: await storage.getAlarm(), soon: scheduler.dueAt('soon') };
  });
  expect(seen.alarm).toBe(seen.now + 1_000);
  expect(seen.soon).toBe(seen.now + 1_000);
});

it('an alarm that fires early (or is run by hand) runs the duty it was set for, not one due later', async () => {
  const ran = await withScheduler(async (scheduler, ran) => {
    const now = Date.now();
    await scheduler.schedule('later', now + 60_000);
    await scheduler.schedule('soon', now + 5_000);
    await scheduler.fire();
    return [...ran];
  });
  expect(ran).toEqual(['soon']);
});

it('at the alarm, runs what is due and sets the alarm again for a duty due later', async () => {
  const seen = await withScheduler(async (scheduler, ran, storage) => {
    const now = Date.now();
    await scheduler.schedule('later', now + 60_000);
    await scheduler.schedule('soon', now - 1);
    // The runtime clears the alarm as it fires.
    await storage.deleteAlarm();
    await scheduler.fire();
    return { now, ran: [...ran], alarm: await storage.getAlarm(), soon: scheduler.dueAt('soon') };
  });
  expect(seen.ran).toEqual(['soon']);
  expect(seen.alarm).toBe(seen.now + 60_000);
  expect(seen.soon).toBeNull();
});

it('after a wake (nothing known), every duty runs at the next alarm', async () => {
  const ran = await withScheduler(async (scheduler, ran) => {
    await scheduler.fire();
    return [...ran];
  });
  expect(ran).toEqual(['soon', 'later']);
});

it('a duty that fails stops the alarm (the runtime retries it) and is due at the retry', async () => {
  const ns = (env as unknown as GatewayEnv).ENDPOINT_HUB;
  const seen = await runInDurableObject(ns.get(ns.newUniqueId()), async (_instance, state) => {
    await state.storage.deleteAlarm();
    const ran: string[] = [];
    let fail = true;
    const scheduler = new AlarmScheduler<Duty>(state.storage, [
      ['soon', async () => { ran.push('soon'); if (fail) throw new Error('R2 unavailable'); }],
      ['later', async () => void ran.push('later')],
    ]);
    const error = await scheduler.fire().then(() => null, (err: Error) => err.message);
    fail = false;
    await scheduler.fire();
    return { error, ran };
  });
  expect(seen.error).toBe('R2 unavailable');
  expect(seen.ran).toEqual(['soon', 'soon', 'later']);
});
