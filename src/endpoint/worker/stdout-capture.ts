// One task's captured console output, capped at LIMITS.maxStdoutBytes so a chatty function
// cannot grow a result (or the worker's memory) without bound.

import { LIMITS } from '../../protocol/api';

export const TRUNCATION_MARKER = '\n[ferry: stdout truncated]\n';

export class StdoutCapture {
  private readonly parts: string[] = [];
  private bytes = 0;
  private truncated = false;

  constructor(private readonly maxBytes: number = LIMITS.maxStdoutBytes) {}

  /** Appends text; answers true once the cap is reached, so callers can stop sending. */
  append(text: string): boolean {
    if (this.truncated) return true;
    const size = Buffer.byteLength(text);
    // The marker counts against the cap: the captured text never exceeds maxBytes.
    const room = this.maxBytes - Buffer.byteLength(TRUNCATION_MARKER) - this.bytes;
    if (size <= room) {
      this.parts.push(text);
      this.bytes += size;
      return false;
    }
    if (room > 0) this.parts.push(Buffer.from(text).subarray(0, room).toString().replace(/\uFFFD$/, ''));
    this.parts.push(TRUNCATION_MARKER);
    this.truncated = true;
    return true;
  }

  get isTruncated(): boolean {
    return this.truncated;
  }

  text(): string {
    return this.parts.join('');
  }
}
