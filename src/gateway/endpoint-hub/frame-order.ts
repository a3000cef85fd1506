// One agent socket's frames, back in the order the agent sent them. In the gateway tests
// (vitest-pool-workers) a Durable Object's queued webSocketMessage events ran out of order (a held
// frame handled after the sync sent behind it, twenty credit frames handled in reverse); through
// wrangler dev they came in order, but nothing documents that as guaranteed. The agent numbers its
// frames (`seq`, see protocol/wire.ts); a frame that comes early waits here until those before it came.

/** Frames that may wait for a missing earlier one; past this the connection is broken. */
export const MAX_EARLY_FRAMES = 1024;

export type OrderVerdict<F> = { due: F[] } | { error: string };

export class FrameOrder<F> {
  private readonly early = new Map<number, F>();

  /** `next`: the seq due first (1 on a new connection; kept in the socket's attachment across hibernation). */
  constructor(private nextSeq: number) {}

  /** The seq due next: every frame before it was handed out. */
  get next(): number {
    return this.nextSeq;
  }

  /** Frames now due, in order: this one and the early ones it frees, or none while an earlier one is missing. */
  accept(seq: number, frame: F): OrderVerdict<F> {
    if (seq < this.nextSeq || this.early.has(seq)) return { error: `frame seq ${seq} came twice` };
    if (seq > this.nextSeq) {
      if (this.early.size >= MAX_EARLY_FRAMES) return { error: `frame seq ${this.nextSeq} still missing after ${MAX_EARLY_FRAMES} later frames` };
      this.early.set(seq, frame);
      return { due: [] };
    }
    const due = [frame];
    this.nextSeq++;
    for (let f = this.early.get(this.nextSeq); f !== undefined; f = this.early.get(this.nextSeq)) {
      this.early.delete(this.nextSeq);
      due.push(f);
      this.nextSeq++;
    }
    return { due };
  }
}
