// Where the agent reads a data reference's bytes: in place from the site's file system (a
// `file://` URL under one of the config's `data_roots`), or through the site cache from the gateway.
// The agent is the only process that decides which paths a task may read; workers only relay.
//
// A worker names what it reads with a ref key (the `object_id` of an interchange `read`):
//   - `<object id>` or `file:///abs/path`: the `$ref` of a `{"$ref": …}` argument, as is;
//   - JSON `{"$ref": …, "locations"?: ["file:///…", …], "digest"?: true}` otherwise. `locations` are
//     site copies of an object, tried before the cache; `digest` asks for a file's sha256, which is
//     computed (streaming, once per file version) only when asked, never for a size or a slice.

import { createHash } from 'node:crypto';
import { constants, promises as fsp, statSync, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { normalize } from 'node:path';
import { z } from 'zod';
import { FerryError } from '../../protocol/errors';
import type { Logger } from '../log';
import type { ObjectInfo } from './object-cache';

/** The object side (cache → gateway); `ObjectCache` is the real one. */
export interface ObjectReader {
  info(id: string): Promise<ObjectInfo>;
  read(id: string, start: number, end: number): Promise<{ info: ObjectInfo; data: Buffer }>;
}

export interface DataRead {
  data: Buffer;
  size: number;
  /** '' when not known without reading the whole file (a file ref read without `digest`). */
  sha256: string;
  /** Where the bytes came from; for logs and tests. */
  source: 'file' | 'location' | 'cache';
}

export type RefKey =
  | { kind: 'file'; url: string; digest: boolean }
  | { kind: 'object'; id: string; locations: string[]; digest: boolean };

const OBJECT_ID = /^[0-9a-f]{64}$/;
const MAX_LOCATIONS = 16;
const KeyObject = z.strictObject({
  $ref: z.string().min(1),
  locations: z.array(z.string()).max(MAX_LOCATIONS).optional(),
  digest: z.literal(true).optional(),
});

/** Parses a worker's ref key; FERRY_DATA_NOT_FOUND for anything that names no object or file. */
export function parseRefKey(key: string): RefKey {
  let ref: string;
  let locations: string[] = [];
  let digest = false;
  if (key.startsWith('{')) {
    let parsed: z.infer<typeof KeyObject>;
    try {
      parsed = KeyObject.parse(JSON.parse(key));
    } catch {
      throw new FerryError('FERRY_DATA_NOT_FOUND', `malformed data reference: ${key.slice(0, 200)}`);
    }
    ref = parsed.$ref;
    locations = parsed.locations ?? [];
    digest = parsed.digest === true;
  } else {
    ref = key;
  }
  if (OBJECT_ID.test(ref)) return { kind: 'object', id: ref, locations, digest };
  if (/^file:/i.test(ref)) {
    if (locations.length) throw new FerryError('FERRY_DATA_NOT_FOUND', `locations go with an object id, not with ${ref.slice(0, 200)}`);
    return { kind: 'file', url: ref, digest };
  }
  throw new FerryError('FERRY_DATA_NOT_FOUND', `not an object id or a file:// URL: ${ref.slice(0, 200)}`);
}

function refused(url: string, why: string): FerryError {
  return new FerryError('FERRY_DATA_PATH_REFUSED', `${url.slice(0, 1000)} is refused: ${why}; no byte of it was read`);
}

/**
 * The absolute path a `file://` URL names, checked as written: `file:` scheme, no host other than
 * localhost, no `..` segment (also percent-encoded: checked after decoding, before anything could
 * normalize it away), no NUL. The WHATWG URL parser is not used: it resolves `..` silently.
 */
export function pathOfFileUrl(url: string): string {
  const m = /^file:\/\/([^/]*)(\/.*)?$/is.exec(url);
  if (!m) throw refused(url, 'not a file:///absolute/path URL');
  if (m[1] !== '' && m[1]!.toLowerCase() !== 'localhost') throw refused(url, `names host ${m[1]}; only files of this site are read`);
  if (!m[2]) throw refused(url, 'names no path');
  let path: string;
  try {
    path = decodeURIComponent(m[2]);
  } catch {
    throw refused(url, 'has malformed percent-encoding');
  }
  if (path.includes('\0')) throw refused(url, 'contains a NUL byte');
  if (path.split('/').includes('..')) throw refused(url, 'contains a .. segment');
  return normalize(path);
}

/**
 * The one answer for a path inside the roots that leads to no readable file there: missing, a link
 * leading outside, unreadable, a loop. It names the URL as asked, never where it led.
 */
function notReadable(url: string): FerryError {
  return new FerryError('FERRY_DATA_NOT_FOUND', `no readable file inside the endpoint's data_roots at ${url.slice(0, 1000)}`);
}

function within(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** An open, checked file: the handle, its fstat, its real path. The caller closes it. */
export interface CheckedFile {
  handle: FileHandle;
  stat: Stats;
  realPath: string;
}

export interface SiteFilesOptions {
  /** Absolute directories (config `data_roots`). */
  roots: readonly string[];
  /**
   * Read regular files that have more than one hard link (config `allow_hard_links`). Off by
   * default: a hard link inside a root to a file outside looks like any file of the root, and no
   * path check can tell where its other names are.
   */
  allowHardLinks?: boolean;
  log: Logger;
  /** Versions of files whose sha256 is remembered. */
  maxDigests?: number;
}

/** Reads files in place under the allowed roots: the path checks, ranged reads, digests. */
export class SiteFiles {
  private readonly roots: string[];
  /** File version (dev:ino:size:mtime:ctime) → its sha256 (once computed) and the computation; Map order is recency. */
  private readonly digests = new Map<string, { promise: Promise<string>; value?: string }>();
  private readonly maxDigests: number;

  constructor(private readonly opts: SiteFilesOptions) {
    this.roots = opts.roots.map((r) => normalize(r));
    this.maxDigests = opts.maxDigests ?? 4096;
    for (const root of this.roots) {
      let ok = false;
      try {
        ok = statSync(root).isDirectory();
      } catch {
        // reported below
      }
      if (!ok) opts.log.warn('a data root is not a directory (yet): nothing under it can be read until it is', { root });
    }
  }

  /**
   * Opens the file a `file://` URL names after checking it, reading no byte before every check
   * passed: FERRY_DATA_PATH_REFUSED for a path outside the roots as written (a check of the text
   * alone), for a non-regular file or one with several hard links inside them. What the file
   * system says about a path that leads outside (a symbolic link's target, whether it exists, may
   * be read, loops) is never told: all of that, and a missing file, is one `notReadable` error that
   * names only the URL the task asked for.
   */
  async open(url: string): Promise<CheckedFile> {
    const path = pathOfFileUrl(url);
    if (this.roots.length === 0) throw refused(url, 'this endpoint allows no file:// data (its data_roots is empty)');
    // Real paths of the roots, each time: a root may be mounted or re-pointed while the agent runs.
    const realRoots = (await Promise.all(this.roots.map((r) => fsp.realpath(r).catch(() => null)))).filter((r): r is string => r !== null);
    const inRoots = (p: string, roots: readonly string[]) => roots.some((r) => within(r, p));
    // The path as written must be inside a root (nothing outside them is even looked at) …
    if (!inRoots(path, this.roots) && !inRoots(path, realRoots)) throw refused(url, `it is outside the endpoint's data_roots (${this.roots.join(', ')})`);
    let realPath: string;
    try {
      realPath = await fsp.realpath(path);
    } catch (err) {
      throw this.fsError(url, err);
    }
    // … and so must the file it really is.
    if (!inRoots(realPath, realRoots)) throw notReadable(url);
    let before: Stats;
    try {
      before = await fsp.stat(realPath);
    } catch (err) {
      throw this.fsError(url, err);
    }
    if (!before.isFile()) throw refused(url, `it is not a regular file (${kindOf(before)})`);
    this.checkLinkCount(url, before);
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: the last component cannot have become a link since realpath; O_NONBLOCK: a FIFO
      // swapped in meanwhile cannot hang the agent (it is refused below).
      handle = await fsp.open(realPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      throw this.fsError(url, err);
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile() || stat.dev !== before.dev || stat.ino !== before.ino) throw refused(url, 'it changed while being checked');
      // A link made between the stat and the open.
      this.checkLinkCount(url, stat);
      // What was opened, whatever happened to the directories on the way (Linux).
      const opened = await fsp.readlink(`/proc/self/fd/${handle.fd}`).catch(() => null);
      if (opened !== null && !inRoots(opened, realRoots)) throw notReadable(url);
      return { handle, stat, realPath };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** Bytes [start, end) of an open file, read at that offset (never the whole file). */
  async read(file: CheckedFile, start: number, end: number, url: string): Promise<Buffer> {
    const data = Buffer.allocUnsafe(end - start);
    let at = 0;
    while (at < data.length) {
      const { bytesRead } = await file.handle.read(data, at, data.length - at, start + at);
      if (bytesRead === 0) throw new FerryError('UNAVAILABLE', `${url.slice(0, 1000)} became shorter while being read`);
      at += bytesRead;
    }
    return data;
  }

  /** The sha256 of an open file if already computed for this version of it (a read never waits for one). */
  knownDigest(file: CheckedFile): string | undefined {
    return this.digests.get(versionOf(file.stat))?.value;
  }

  /** The sha256 of an open file, streamed in 1 MiB reads; once per version of the file (concurrent askers share it). */
  digest(file: CheckedFile, url: string): Promise<string> {
    const key = versionOf(file.stat);
    const found = this.digests.get(key);
    if (found) {
      this.digests.delete(key);
      this.digests.set(key, found);
      return found.promise;
    }
    const entry: { promise: Promise<string>; value?: string } = { promise: hashFile(file, url) };
    entry.promise.then((v) => void (entry.value = v), () => this.digests.delete(key));
    this.digests.set(key, entry);
    while (this.digests.size > this.maxDigests) this.digests.delete(this.digests.keys().next().value!);
    return entry.promise;
  }

  private checkLinkCount(url: string, stat: Stats): void {
    if (stat.nlink > 1 && !this.opts.allowHardLinks) throw refused(url, 'it has more than one hard link (the endpoint config\'s allow_hard_links is off)');
  }

  // A path inside a root may lead anywhere through links: whether it ended at a missing file, an
  // unreadable one or a loop may be a fact about a file outside the roots, so all are one answer.
  private fsError(url: string, err: unknown): FerryError {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EPERM' || code === 'ELOOP') return notReadable(url);
    return new FerryError('UNAVAILABLE', `cannot open ${url.slice(0, 1000)}: ${code ?? 'an I/O error'}`);
  }
}

function versionOf(s: Stats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

function kindOf(s: Stats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a file';
}

async function hashFile(file: CheckedFile, url: string): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1024 * 1024);
  let at = 0;
  while (at < file.stat.size) {
    const { bytesRead } = await file.handle.read(buf, 0, Math.min(buf.length, file.stat.size - at), at);
    if (bytesRead === 0) throw new FerryError('UNAVAILABLE', `${url.slice(0, 1000)} became shorter while being hashed`);
    hash.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  return hash.digest('hex');
}

export interface DataSourcesOptions {
  files: SiteFiles;
  objects: ObjectReader;
  log: Logger;
}

/**
 * The agent's reader for workers' `read`s: a file ref from the file system only; an object ref
 * from the first of its `locations` that is usable (inside the roots, a regular file of the
 * object's size and sha256, verified once per version of the file), else from the cache, which
 * falls back to the gateway. Every unusable location is logged (debug) and skipped.
 */
export class DataSources {
  constructor(private readonly opts: DataSourcesOptions) {}

  async read(key: string, start: number, end: number): Promise<DataRead> {
    const ref = parseRefKey(key);
    if (ref.kind === 'file') return this.readFile(ref.url, start, end, ref.digest);
    if (ref.locations.length) {
      const info = await this.opts.objects.info(ref.id);
      checkRange(start, end, info.size, ref.id);
      if (start === end) return { data: Buffer.alloc(0), size: info.size, sha256: info.sha256, source: 'cache' };
      for (const location of ref.locations) {
        const data = await this.readLocation(ref.id, info, location, start, end);
        if (data) return { data, size: info.size, sha256: info.sha256, source: 'location' };
      }
    }
    const { info, data } = await this.opts.objects.read(ref.id, start, end);
    return { data, size: info.size, sha256: info.sha256, source: 'cache' };
  }

  private async readFile(url: string, start: number, end: number, digest: boolean): Promise<DataRead> {
    const files = this.opts.files;
    const file = await files.open(url);
    try {
      const size = file.stat.size;
      checkRange(start, end, size, url);
      const data = start === end ? Buffer.alloc(0) : await files.read(file, start, end, url);
      const sha256 = digest ? await files.digest(file, url) : (files.knownDigest(file) ?? '');
      return { data, size, sha256, source: 'file' };
    } finally {
      await file.handle.close().catch(() => undefined);
    }
  }

  /** Bytes from one site copy of an object, or null (logged) when that copy cannot serve them. */
  private async readLocation(id: string, info: ObjectInfo, location: string, start: number, end: number): Promise<Buffer | null> {
    const files = this.opts.files;
    let file: CheckedFile | undefined;
    try {
      file = await files.open(location);
      if (file.stat.size !== info.size) throw new Error(`it has ${file.stat.size} bytes, the object ${info.size}`);
      if (!info.sha256) throw new Error('the gateway gave no sha256 to check it against');
      const sha256 = await files.digest(file, location);
      if (sha256 !== info.sha256) throw new Error(`its sha256 ${sha256} is not the object's ${info.sha256}`);
      return await files.read(file, start, end, location);
    } catch (err) {
      const reason = err instanceof FerryError ? `${err.code}: ${err.message}` : (err as Error).message;
      this.opts.log.debug('data location not used; falling back', { object_id: id, location: location.slice(0, 1000), reason });
      return null;
    } finally {
      await file?.handle.close().catch(() => undefined);
    }
  }
}

function checkRange(start: number, end: number, size: number, what: string): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= size)) {
    throw new FerryError('RANGE_NOT_SATISFIABLE', `bytes ${start}..${end} are outside ${what.slice(0, 1000)} (${size} bytes)`);
  }
}
