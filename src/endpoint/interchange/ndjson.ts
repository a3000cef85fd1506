// Newline-delimited JSON over a stream socket: the framing between the interchange and managers.

import type { Socket } from 'node:net';

/** Calls `onMessage` with each parsed line; a line that is not JSON closes the socket. */
export function readMessages(socket: Socket, onMessage: (value: unknown) => void): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    let start = 0;
    let nl: number;
    while ((nl = buffer.indexOf('\n', start)) >= 0) {
      const line = buffer.slice(start, nl);
      start = nl + 1;
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
    buffer = buffer.slice(start);
  });
}

export function sendMessage(socket: Socket, value: unknown): void {
  if (!socket.destroyed) socket.write(JSON.stringify(value) + '\n');
}
