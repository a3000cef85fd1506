// How a browser may show an object's bytes. Objects carry whatever Content-Type their writer
// named, and the dashboard will serve pages from the gateway's origin: an HTML or SVG object opened
// inline would run its scripts with that origin's cookies and storage. So nothing is sniffed, and
// only types a browser renders without running anything are shown inline; the rest download.

/**
 * Shown inline: plain text, JSON and raster images, which no browser executes. Not PDF (viewers
 * run its JavaScript), not SVG, HTML, XML or JavaScript (scripts), not octet-stream (a download).
 */
const INLINE_MEDIA_TYPES: ReadonlySet<string> = new Set(['text/plain', 'application/json', 'image/png', 'image/jpeg', 'image/gif', 'image/webp']);

function mediaTypeOf(contentType: string): string {
  return contentType.split(';', 1)[0]!.trim().toLowerCase();
}

/** Headers every answer carrying an object's bytes (or its HEAD) gets, by its stored Content-Type. */
export function displayHeaders(contentType: string): Record<string, string> {
  const headers: Record<string, string> = { 'x-content-type-options': 'nosniff' };
  if (!INLINE_MEDIA_TYPES.has(mediaTypeOf(contentType))) headers['content-disposition'] = 'attachment';
  return headers;
}
