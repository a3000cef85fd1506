// Newline-delimited JSON over a stream socket: the framing between the interchange and managers.

import type { Socket } from 'node:net';

export interface ReadOptions {
  /**
   * The longest line accepted, in UTF-16 code units (never more than the line's bytes). Asked at
   * each chunk, so a reader may raise it once a peer has proved who it is. Default: no cap.
   */
  maxLineChars?: () => number;
  /** Why the reader closed the socket (a line over the cap, or one that is not JSON); called once. */
  onRefused?: (reason: string) => void;
}

/**
 * Calls `onMessage` with each parsed line. A line that is not JSON, or that grows past the cap,
 * closes the socket: the cap is checked on each chunk as it comes, so an unended line is never
 * held beyond the cap plus one chunk (a peer sending 400 MiB without a newline costs a few KiB).
 */
export function readMessages(socket: Socket, onMessage: (value: unknown) => void, opts: ReadOptions = {}): void {
  // The pieces of a line not yet ended: a long line (a result part, ~1.4 MB) arriving in many
  // chunks is joined once when its newline comes, not re-scanned with every chunk.
  let pieces: string[] = [];
  let pendingChars = 0;
  let refused = false;
  const refuse = (reason: string) => {
    refused = true;
    pieces = [];
    socket.destroy();
    opts.onRefused?.(reason);
  };
  const overCap = (chars: number) => opts.maxLineChars !== undefined && chars > opts.maxLineChars();
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    if (refused) return;
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf('\n', start)) >= 0) {
      if (overCap(pendingChars + nl - start)) return refuse(`a message longer than ${opts.maxLineChars!()} characters`);
      pieces.push(chunk.slice(start, nl));
      start = nl + 1;
      const line = pieces.length === 1 ? pieces[0]! : pieces.join('');
      pieces = [];
      pendingChars = 0;
      if (!line) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return refuse('a message that is not JSON');
      }
      onMessage(value);
      if (socket.destroyed) return;
    }
    if (start === chunk.length) return;
    if (overCap(pendingChars + chunk.length - start)) return refuse(`a message longer than ${opts.maxLineChars!()} characters`);
    pieces.push(chunk.slice(start));
    pendingChars += chunk.length - start;
  });
}

/** Writes one message; `onWritten` runs once it has been handed to the OS (or at once on a closed socket). */
export function sendMessage(socket: Socket, value: unknown, onWritten?: () => void): void {
  if (socket.destroyed) return onWritten?.();
  socket.write(JSON.stringify(value) + '\n', onWritten && (() => onWritten()));
}

/** Writes a line already encoded (no newline); for a sender that measured it first. */
export function sendLine(socket: Socket, line: string): void {
  if (!socket.destroyed) socket.write(line + '\n');
}
