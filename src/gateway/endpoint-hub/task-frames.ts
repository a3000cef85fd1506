// Packs outbox rows into `tasks` frames (src/protocol/wire.ts) under the frame budget, splicing the
// stored message and spec texts instead of re-encoding them. Each frame carries the code of every
// function its tasks name.

import { FRAME_BUDGET_BYTES } from '../../protocol/wire';
import type { OutboxRow } from './outbox';

const FRAME_OVERHEAD = '{"type":"tasks","tasks":[],"functions":[]}'.length;

export function buildTaskFrames(rows: readonly OutboxRow[], specJson: (functionUuid: string) => string | null, budget = FRAME_BUDGET_BYTES): string[] {
  const frames: string[] = [];
  let messages: string[] = [];
  let specs = new Map<string, string>();
  let size = FRAME_OVERHEAD;
  const flush = () => {
    if (messages.length === 0) return;
    frames.push(`{"type":"tasks","tasks":[${messages.join(',')}],"functions":[${[...specs.values()].join(',')}]}`);
    messages = [];
    specs = new Map();
    size = FRAME_OVERHEAD;
  };
  for (const row of rows) {
    const spec = specs.has(row.function_uuid) ? null : specJson(row.function_uuid);
    const added = row.message.length + 1 + (spec ? spec.length + 1 : 0);
    if (messages.length > 0 && size + added > budget) {
      flush();
      const again = specJson(row.function_uuid);
      messages.push(row.message);
      if (again) specs.set(row.function_uuid, again);
      size += row.message.length + 1 + (again ? again.length + 1 : 0);
      continue;
    }
    messages.push(row.message);
    if (spec) specs.set(row.function_uuid, spec);
    size += added;
  }
  flush();
  return frames;
}
