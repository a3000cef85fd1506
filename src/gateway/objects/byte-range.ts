// HTTP byte ranges of one object (RFC 9110 §14): `bytes=a-b`, `bytes=a-`, `bytes=-n`, one range per
// request. Parsing needs no size; resolving against the object's size decides 206 or 416.

import { FerryError } from '../../protocol/errors';

export type RangeSpec = { kind: 'from'; start: number; end: number | null } | { kind: 'suffix'; length: number };

export interface ResolvedRange {
  offset: number;
  length: number;
}

/** The range of a `Range` header, or null when there is none (the whole object). */
export function parseRangeHeader(header: string | null | undefined): RangeSpec | null {
  if (header === null || header === undefined || header.trim() === '') return null;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match || (match[1] === '' && match[2] === '')) {
    throw new FerryError('VALIDATION_ERROR', `Range: expected one range, bytes=a-b, bytes=a- or bytes=-n (got ${JSON.stringify(header.slice(0, 100))})`);
  }
  if (match[1] === '') return { kind: 'suffix', length: Number(match[2]) };
  const start = Number(match[1]);
  const end = match[2] === '' ? null : Number(match[2]);
  if (end !== null && end < start) throw new FerryError('VALIDATION_ERROR', `Range: the last byte (${end}) is before the first (${start})`);
  return { kind: 'from', start, end };
}

/** The bytes a range names in an object of `size` bytes; null when it names none (416). */
export function resolveRange(spec: RangeSpec, size: number): ResolvedRange | null {
  if (spec.kind === 'suffix') {
    if (spec.length === 0 || size === 0) return null;
    const length = Math.min(spec.length, size);
    return { offset: size - length, length };
  }
  if (spec.start >= size) return null;
  const last = spec.end === null ? size - 1 : Math.min(spec.end, size - 1);
  return { offset: spec.start, length: last - spec.start + 1 };
}
