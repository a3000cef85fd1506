// Provenance events of a task's life. Every state change emits one (through `transition()`);
// the lineage store (a later stage) turns them into W3C PROV records.

import type { TransitionEvent } from '../protocol/task-state';

export interface ProvenanceSink {
  record(events: readonly TransitionEvent[]): void;
}

/** A sink that keeps nothing, for code paths where lineage is not recorded yet. */
export const discardProvenance: ProvenanceSink = {
  record() {},
};
