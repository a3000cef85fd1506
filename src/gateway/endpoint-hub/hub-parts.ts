// The parts of an EndpointHub, built and wired in one place (the hub's constructor, and tests that
// drive a part over a real Durable Object's storage). Each part holds the shared HubState; the
// timed duties share the one alarm through the scheduler.

import type { GatewayEnv } from '../env';
import { HubLineage } from '../lineage/hub-lineage';
import { AgentChannel } from './agent-channel';
import { AlarmScheduler } from './alarm-scheduler';
import { HubEvents } from './hub-events';
import { HubState } from './hub-state';
import { TaskIntake } from './task-intake';
import { TaskOutcomes } from './task-outcomes';

export type HubDuty = 'lineage' | 'sweep';

export interface HubParts {
  state: HubState;
  alarms: AlarmScheduler<HubDuty>;
  lineage: HubLineage;
  outcomes: TaskOutcomes;
  channel: AgentChannel;
  intake: TaskIntake;
  events: HubEvents;
}

/** `envOf`: the object's env, read when used. An endpoint registered before a table existed gets it here (IF NOT EXISTS). */
export function hubParts(ctx: DurableObjectState, envOf: () => GatewayEnv): HubParts {
  const state = new HubState(ctx, envOf);
  const parts = { state } as HubParts;
  parts.alarms = new AlarmScheduler<HubDuty>(ctx.storage, [
    ['lineage', () => parts.lineage.duty()],
    ['sweep', () => parts.channel.sweep.duty()],
  ]);
  parts.lineage = new HubLineage(state, (at) => parts.alarms.schedule('lineage', at));
  parts.outcomes = new TaskOutcomes(state, parts.lineage, (ids) => parts.channel.cancel(ids));
  parts.channel = new AgentChannel(state, parts.outcomes, parts.lineage, (at) => parts.alarms.schedule('sweep', at));
  parts.intake = new TaskIntake(state, parts.outcomes, parts.channel);
  parts.events = new HubEvents(state, parts.outcomes, parts.channel);
  // An id nobody registered gets no tables: probing random ids leaves nothing behind.
  if (state.schemaReady) state.migrate(() => parts.lineage.createSchema());
  return parts;
}
