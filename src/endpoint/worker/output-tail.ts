// The last N lines of a stream, held in bounded memory while it is read: a ring of complete lines
// plus the line still being written, with a byte cap over both, so a command printing gigabytes,
// or one endless line, costs the worker no more than the cap.

export class OutputTail {
  private readonly ring: string[];
  private head = 0;
  private count = 0;
  private ringBytes = 0;
  private partial = '';

  /**
   * @param maxLines lines kept (the last ones); an unterminated last line counts as one.
   * @param maxBytes UTF-8 bytes kept over all lines; older lines go first, then the head of a line
   *   longer than this on its own.
   */
  constructor(
    private readonly maxLines: number,
    private readonly maxBytes: number,
  ) {
    if (!(Number.isInteger(maxLines) && maxLines >= 1)) throw new RangeError(`maxLines must be an integer ≥ 1, got ${maxLines}`);
    if (!(Number.isInteger(maxBytes) && maxBytes >= 1)) throw new RangeError(`maxBytes must be an integer ≥ 1, got ${maxBytes}`);
    this.ring = new Array<string>(maxLines);
  }

  /** Takes decoded text (a stream with setEncoding('utf8') never splits a character). */
  write(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const line = this.partial + text.slice(start, nl + 1);
      this.partial = '';
      this.push(tailBytes(line, this.maxBytes));
      start = nl + 1;
    }
    if (start < text.length) this.partial = tailBytes(this.partial + text.slice(start), this.maxBytes);
  }

  /** The kept lines, joined as they were written (each with its newline, the last maybe without). */
  text(): string {
    const lines: string[] = [];
    for (let k = 0; k < this.count; k++) lines.push(this.ring[(this.head + k) % this.maxLines]!);
    if (this.partial !== '') {
      // The unterminated line is the newest: it displaces the oldest complete line and bytes.
      let bytes = this.ringBytes + Buffer.byteLength(this.partial);
      if (lines.length === this.maxLines) bytes -= Buffer.byteLength(lines.shift()!);
      while (bytes > this.maxBytes && lines.length > 0) bytes -= Buffer.byteLength(lines.shift()!);
      lines.push(this.partial);
    }
    return lines.join('');
  }

  private push(line: string): void {
    const size = Buffer.byteLength(line);
    if (this.count === this.maxLines) this.dropOldest();
    while (this.count > 0 && this.ringBytes + size > this.maxBytes) this.dropOldest();
    this.ring[(this.head + this.count) % this.maxLines] = line;
    this.count++;
    this.ringBytes += size;
  }

  private dropOldest(): void {
    this.ringBytes -= Buffer.byteLength(this.ring[this.head]!);
    this.ring[this.head] = '';
    this.head = (this.head + 1) % this.maxLines;
    this.count--;
  }
}

/** The last `max` bytes of `s` as UTF-8, never starting inside a character. */
export function tailBytes(s: string, max: number): string {
  // A string's UTF-8 form is at most 3 bytes per UTF-16 unit: short strings need no measuring.
  if (s.length * 3 <= max) return s;
  const buf = Buffer.from(s);
  if (buf.length <= max) return s;
  let from = buf.length - max;
  // Skip continuation bytes (10xxxxxx) so the cut falls on a character boundary.
  while (from < buf.length && (buf[from]! & 0xc0) === 0x80) from++;
  return buf.subarray(from).toString();
}
