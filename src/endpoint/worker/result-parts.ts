// Sends a result body (bytes, or JSON over the inline limit) from a worker to its manager as
// `result_part` messages of RESULT_PART_BYTES, with at most RESULT_PARTS_IN_FLIGHT of them not yet
// acknowledged: the manager acknowledges a part once it has written it to the agent's socket, so a
// slow link holds the worker back instead of piling the result up in the manager's memory.

import { createHash } from 'node:crypto';
import { RESULT_PART_BYTES, RESULT_PARTS_IN_FLIGHT, type FromWorker, type ResultBody } from '../../protocol/interchange';
import type { EncodedResult } from './sandbox';

export interface ResultPartSenderOptions {
  send: (msg: FromWorker) => void;
  partBytes?: number;
  inFlight?: number;
}

export class ResultPartSender {
  private readonly acks = new Map<string, () => void>();
  private readonly partBytes: number;
  private readonly inFlight: number;

  constructor(private readonly opts: ResultPartSenderOptions) {
    this.partBytes = opts.partBytes ?? RESULT_PART_BYTES;
    this.inFlight = opts.inFlight ?? RESULT_PARTS_IN_FLIGHT;
  }

  /** Sends the body in parts; resolves with its size, digest and encoding once every part is acknowledged. */
  async send(taskId: string, attempt: number, body: EncodedResult): Promise<ResultBody> {
    const { data } = body;
    const hash = createHash('sha256');
    const pending: Array<Promise<void>> = [];
    for (let offset = 0; offset < data.byteLength; offset += this.partBytes) {
      const piece = data.subarray(offset, Math.min(offset + this.partBytes, data.byteLength));
      hash.update(piece);
      pending.push(new Promise<void>((resolve) => this.acks.set(keyOf(taskId, attempt, offset), resolve)));
      // The IPC channel copies the view's bytes (structured clone), not the whole result.
      this.opts.send({ type: 'result_part', task_id: taskId, attempt, offset, data: piece });
      if (pending.length >= this.inFlight) await pending.shift();
    }
    await Promise.all(pending);
    return { size: data.byteLength, sha256: hash.digest('hex'), content_type: body.content_type };
  }

  /** The manager's acknowledgement of one part. */
  ack(taskId: string, attempt: number, offset: number): void {
    const key = keyOf(taskId, attempt, offset);
    const resolve = this.acks.get(key);
    this.acks.delete(key);
    resolve?.();
  }
}

function keyOf(taskId: string, attempt: number, offset: number): string {
  return `${taskId} ${attempt} ${offset}`;
}
