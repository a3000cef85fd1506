// The content-derived id of a registered function: the same owner, runtime and code always give the
// same id, so registering a function twice is harmless and ids never collide across owners. A Python
// function's entry point (its name) is part of its identity: one source may define several functions.

import type { Runtime } from '../protocol/api';

/**
 * sha256(owner \n runtime \n code) laid out as a UUID of version 8 (custom) and RFC 4122 variant;
 * for `python`, sha256(owner \n python \n name \n code).
 */
export async function functionUuid(owner: string, runtime: Runtime, code: string, name?: string): Promise<string> {
  const text = runtime === 'python' ? `${owner}\n${runtime}\n${name ?? ''}\n${code}` : `${owner}\n${runtime}\n${code}`;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  const bytes = digest.slice(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
