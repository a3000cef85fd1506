// Sizes of JSON text as UTF-8 bytes, the unit of every Ferry limit, without encoding the text.

/** UTF-8 length of `text`; lone surrogates count as the 3 bytes of U+FFFD, as TextEncoder does. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
}

/** Whether `text` is over `limit` bytes; exact, but only scans text that could be. */
export function isOverBytes(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return utf8Length(text) > limit;
}
