// Newline-delimited JSON over a stream socket: the framing between the interchange and managers.

import type { Socket } from 'node:net';

/** Calls `onMessage` with each parsed line; a line that is not JSON closes the socket. */
export function readMessages(socket: Socket, onMessage: (value: unknown) => void): void {
  // The pieces of a line not yet ended: a long line (a result part, ~1.4 MB) arriving in many
  // chunks is joined once when its newline comes, not re-scanned with every chunk.
  let pieces: string[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf('\n', start)) >= 0) {
      pieces.push(chunk.slice(start, nl));
      start = nl + 1;
      const line = pieces.length === 1 ? pieces[0]! : pieces.join('');
      pieces = [];
      if (!line) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        socket.destroy(new Error('malformed message'));
        return;
      }
      onMessage(value);
    }
    if (start < chunk.length) pieces.push(chunk.slice(start));
  });
}

/** Writes one message; `onWritten` runs once it has been handed to the OS (or at once on a closed socket). */
export function sendMessage(socket: Socket, value: unknown, onWritten?: () => void): void {
  if (socket.destroyed) return onWritten?.();
  socket.write(JSON.stringify(value) + '\n', onWritten && (() => onWritten()));
}
