import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { FromWorker, ResultPart } from '../../protocol/interchange';
import { ResultPartSender } from './result-parts';

describe('ResultPartSender', () => {
  it('sends a body in parts, never more than the window unacknowledged, and answers its size and sha256', async () => {
    const sent: ResultPart[] = [];
    const sender = new ResultPartSender({ send: (m: FromWorker) => void (m.type === 'result_part' && sent.push(m)), partBytes: 10, inFlight: 2 });
    const data = Uint8Array.from({ length: 45 }, (_, i) => i);
    let done = false;
    const finished = sender.send('t1', 2, { data, content_type: 'application/octet-stream' }).then((info) => ((done = true), info));
    await new Promise((r) => setImmediate(r));
    // Two parts out, none acknowledged: the sender waits.
    expect(sent.map((m) => m.offset)).toEqual([0, 10]);
    sender.ack('t1', 2, 0);
    await new Promise((r) => setImmediate(r));
    expect(sent.map((m) => m.offset)).toEqual([0, 10, 20]);
    // An acknowledgement for another task or attempt frees nothing.
    sender.ack('t1', 1, 10);
    sender.ack('t2', 2, 10);
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(3);
    for (const offset of [10, 20, 30]) {
      sender.ack('t1', 2, offset);
      await new Promise((r) => setImmediate(r));
    }
    expect(sent.map((m) => m.offset)).toEqual([0, 10, 20, 30, 40]);
    expect(done).toBe(false); // the last part is not acknowledged yet
    sender.ack('t1', 2, 40);
    const info = await finished;
    expect(info).toEqual({ size: 45, sha256: createHash('sha256').update(data).digest('hex'), content_type: 'application/octet-stream' });
    const joined = Buffer.concat(sent.map((m) => m.data));
    expect(Array.from(joined)).toEqual(Array.from(data));
    expect(sent.every((m) => m.task_id === 't1' && m.attempt === 2)).toBe(true);
  });

  it('sends nothing for an empty body', async () => {
    const sent: FromWorker[] = [];
    const info = await new ResultPartSender({ send: (m) => sent.push(m) }).send('t', 1, { data: new Uint8Array(0), content_type: 'application/json' });
    expect(sent).toEqual([]);
    expect(info).toEqual({ size: 0, sha256: createHash('sha256').digest('hex'), content_type: 'application/json' });
  });
});
