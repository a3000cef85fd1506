// How long to wait before trying again something that failed and may mend (a connection, a token
// exchange, an upload, an event stream): capped exponential backoff with jitter, the one policy of
// every retry in Ferry. What is tried again, and when to give up, stays with each caller: undici's
// RetryAgent retries one request, while these retry a connection, a whole upload with a fresh token,
// or a stream resumed where it stopped.

export interface BackoffOptions {
  /** The first wait, ms. */
  minMs: number;
  /** The longest wait, ms. */
  maxMs: number;
  /** Width of the random factor around 1: 1 (default) waits ×0.5 to ×1.5, 0.5 waits ×0.75 to ×1.25, 0 exactly. */
  jitter?: number;
}

export class Backoff {
  private failed = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** Failures since the last reset(). */
  get failures(): number {
    return this.failed;
  }

  /**
   * The wait after one more failure: minMs doubled for each failure before it, at least `floorMs`
   * (what a server asked for), at most maxMs, then jittered.
   */
  next(floorMs = 0): number {
    const { minMs, maxMs, jitter = 1 } = this.options;
    const base = Math.min(maxMs, Math.max(floorMs, minMs * 2 ** Math.min(this.failed, 30)));
    this.failed++;
    return Math.round(base * (1 - jitter / 2 + Math.random() * jitter));
  }

  /** It worked: the next failure waits minMs again. */
  reset(): void {
    this.failed = 0;
  }
}
