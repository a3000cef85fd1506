// Ids of objects and uploads. An object's id is derived from its owner and the sha256 of its
// bytes: the same bytes from one owner get one id, and an id says nothing to another owner.

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function objectIdOf(owner: string, contentSha256: string): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${owner}\n${contentSha256}`)));
}

/** `bytes` random bytes as lower-case hex (upload ids, storage keys). */
export function randomHex(bytes = 16): string {
  return hex(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Where the bytes live in R2: a random key, never derived from the content or the owner. */
export function newStorageKey(): string {
  return `blobs/${randomHex(16)}`;
}

export function base64OfHex(hexText: string): string {
  let binary = '';
  for (let i = 0; i < hexText.length; i += 2) binary += String.fromCharCode(parseInt(hexText.slice(i, i + 2), 16));
  return btoa(binary);
}
