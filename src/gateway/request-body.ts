// Reads a JSON request body under a byte cap: Content-Length is checked first, then the stream is
// counted as it arrives, so a lying or absent Content-Length cannot push more than the cap in; its
// nesting is bounded before it is parsed, so no recursive decoder behind it can overflow the stack.

import { LIMITS } from '../protocol/api';
import { FerryError } from '../protocol/errors';
import { textNestsDeeperThan } from '../protocol/json-depth';

function tooLarge(maxBytes: number): FerryError {
  return new FerryError('PAYLOAD_TOO_LARGE', `the request body is over ${maxBytes} bytes; split the batch or pass large data by reference`, { max_bytes: maxBytes });
}

/** A request's body, or any message with headers and a body stream (a provider's answer). */
export async function readBodyText(request: Pick<Request, 'headers' | 'body'>, maxBytes: number): Promise<string> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return new TextDecoder().decode(chunks[0]);
  const joined = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    joined.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(joined);
}

/** The JSON value of a request body; nesting past LIMITS.maxJsonDepth is refused before parsing. */
export function parseJsonText(text: string): unknown {
  if (textNestsDeeperThan(text, LIMITS.maxJsonDepth)) {
    throw new FerryError('VALIDATION_ERROR', `(body): nests arrays and objects deeper than ${LIMITS.maxJsonDepth} levels`, { max_depth: LIMITS.maxJsonDepth });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FerryError('INVALID_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}
