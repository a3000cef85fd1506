// Reads of data references on the agent against real temporary directories, files, symbolic links
// and a FIFO: what inside data_roots is read in place, what is refused (and never opened), and how
// an object's site locations fall back to the cache.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, promises, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FerryError } from '../../protocol/errors';
import { createLogger } from '../log';
import { DataSources, parseRefKey, pathOfFileUrl, SiteFiles, type ObjectReader } from './data-sources';
import type { ObjectInfo } from './object-cache';

const MiB = 1024 * 1024;
const DATA: Buffer = Buffer.from(Buffer.alloc(3 * MiB + 17).map((_, i) => (i * 13 + (i >>> 10)) & 255));
const SHA = createHash('sha256').update(DATA).digest('hex');
const ID = 'e'.repeat(64);

let base: string;
let root: string;
let outside: string;
const url = (p: string) => pathToFileURL(p).href;

beforeAll(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'ferry-sources-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'data.bin'), DATA);
  writeFileSync(join(root, 'sub', 'with space#1.txt'), 'hello');
  writeFileSync(join(outside, 'secret.bin'), DATA);
  symlinkSync(join(outside, 'secret.bin'), join(root, 'escape.bin'));
  symlinkSync(outside, join(root, 'escape-dir'));
  symlinkSync(join(root, 'data.bin'), join(root, 'alias.bin'));
  symlinkSync(root, join(base, 'root-link'));
  symlinkSync(join(outside, 'no-such-file'), join(root, 'dangling-out.bin'));
  symlinkSync(join(root, 'no-such-file'), join(root, 'dangling-in.bin'));
  symlinkSync(join(root, 'loop-b'), join(root, 'loop-a'));
  symlinkSync(join(root, 'loop-a'), join(root, 'loop-b'));
  linkSync(join(outside, 'secret.bin'), join(root, 'hard.bin'));
  execFileSync('mkfifo', [join(root, 'pipe')]);
});

afterAll(() => rmSync(base, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const log = createLogger({}, () => {});

/** The object side, in memory: counts reads so a test can see whether the cache was asked. */
function fakeObjects(): ObjectReader & { reads: number } {
  const info: ObjectInfo = { size: DATA.length, sha256: SHA };
  return {
    reads: 0,
    info: async (id) => {
      if (id !== ID) throw new FerryError('NOT_FOUND', 'object not found');
      return info;
    },
    async read(id, start, end) {
      this.reads++;
      if (id !== ID) throw new FerryError('NOT_FOUND', 'object not found');
      return { info, data: DATA.subarray(start, end) };
    },
  };
}

function sources(roots: string[] = [root], allowHardLinks = false) {
  const objects = fakeObjects();
  return { objects, ds: new DataSources({ files: new SiteFiles({ roots, allowHardLinks, log }), objects, log }) };
}

async function failure(p: Promise<unknown>): Promise<FerryError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err, 'expected the read to fail').toBeInstanceOf(FerryError);
  return err as FerryError;
}

describe('file:// URLs as written', () => {
  it('refuses .. segments, raw or percent-encoded, before any normalization', () => {
    for (const bad of [`file://${root}/../outside/secret.bin`, `file://${root}/%2e%2e/outside/secret.bin`, `file://${root}/sub%2F..%2F..%2Foutside`, `file://${root}/..`]) {
      expect(() => pathOfFileUrl(bad), bad).toThrow(expect.objectContaining({ code: 'FERRY_DATA_PATH_REFUSED', message: expect.stringContaining('..') }));
    }
  });

  it('refuses other hosts, NUL bytes and non-file URLs; decodes percent-encoding', () => {
    for (const bad of ['file://elsewhere/etc/passwd', 'file:///x%00y', 'http://127.0.0.1/x', 'file:relative', 'file:///%zz']) {
      expect(() => pathOfFileUrl(bad), bad).toThrow(expect.objectContaining({ code: 'FERRY_DATA_PATH_REFUSED' }));
    }
    expect(pathOfFileUrl('file://localhost/data/a%20b.h5')).toBe('/data/a b.h5');
    expect(pathOfFileUrl('file:///data//x/./y')).toBe('/data/x/y');
  });

  it('parses ref keys: a bare id, a file URL, JSON with locations or digest', () => {
    expect(parseRefKey(ID)).toEqual({ kind: 'object', id: ID, locations: [], digest: false });
    expect(parseRefKey('file:///d/x')).toEqual({ kind: 'file', url: 'file:///d/x', digest: false });
    expect(parseRefKey(JSON.stringify({ $ref: ID, locations: ['file:///d/x'] }))).toEqual({ kind: 'object', id: ID, locations: ['file:///d/x'], digest: false });
    expect(parseRefKey(JSON.stringify({ $ref: 'file:///d/x', digest: true }))).toEqual({ kind: 'file', url: 'file:///d/x', digest: true });
    for (const bad of ['nope', '{"$ref": 1}', '{bad json', JSON.stringify({ $ref: 'file:///d/x', locations: ['file:///d/y'] }), JSON.stringify({ $ref: ID, extra: 1 })]) {
      expect(() => parseRefKey(bad), bad).toThrow(expect.objectContaining({ code: 'FERRY_DATA_NOT_FOUND' }));
    }
  });
});

describe('file references inside data_roots', () => {
  it('reads a slice in place at its offset, with the size from stat and the sha256 only when asked', async () => {
    const { ds, objects } = sources();
    const u = url(join(root, 'data.bin'));
    const a = MiB - 5;
    const r = await ds.read(u, a, a + 1000);
    expect(r.data.equals(DATA.subarray(a, a + 1000))).toBe(true);
    expect(r).toMatchObject({ size: DATA.length, sha256: '', source: 'file' });
    const meta = await ds.read(JSON.stringify({ $ref: u, digest: true }), 0, 0);
    expect(meta).toMatchObject({ size: DATA.length, sha256: SHA });
    // Once computed for this version of the file, every answer carries it.
    expect((await ds.read(u, 0, 0)).sha256).toBe(SHA);
    expect(objects.reads).toBe(0);
  });

  it('follows links that stay inside the roots, and roots that are themselves links', async () => {
    const { ds } = sources();
    expect((await ds.read(url(join(root, 'alias.bin')), 10, 20)).data.equals(DATA.subarray(10, 20))).toBe(true);
    const viaLink = sources([join(base, 'root-link')]).ds;
    expect((await viaLink.read(url(join(base, 'root-link', 'data.bin')), 0, 4)).data.equals(DATA.subarray(0, 4))).toBe(true);
    expect((await viaLink.read(url(join(root, 'data.bin')), 0, 4)).data.equals(DATA.subarray(0, 4))).toBe(true);
    expect((await ds.read(url(join(root, 'sub', 'with space#1.txt')), 0, 5)).data.toString()).toBe('hello');
  });

  it('answers FERRY_DATA_NOT_FOUND for a missing file inside a root, RANGE_NOT_SATISFIABLE past the end', async () => {
    const { ds } = sources();
    const missing = await failure(ds.read(url(join(root, 'nope.bin')), 0, 1));
    expect(missing.code).toBe('FERRY_DATA_NOT_FOUND');
    expect(missing.message).toContain('nope.bin');
    expect((await failure(ds.read(url(join(root, 'data.bin')), DATA.length - 1, DATA.length + 1))).code).toBe('RANGE_NOT_SATISFIABLE');
  });

  it('gives a new sha256 when the file changes', async () => {
    const { ds } = sources();
    const p = join(root, 'changing.txt');
    writeFileSync(p, 'one');
    const key = JSON.stringify({ $ref: url(p), digest: true });
    expect((await ds.read(key, 0, 0)).sha256).toBe(createHash('sha256').update('one').digest('hex'));
    writeFileSync(p, 'two!');
    utimesSync(p, new Date(), new Date(Date.now() + 5000));
    expect(await ds.read(key, 0, 0)).toMatchObject({ size: 4, sha256: createHash('sha256').update('two!').digest('hex') });
  });
});

describe('refused paths: FERRY_DATA_PATH_REFUSED, the file never opened', () => {
  const cases: Array<[string, () => string, RegExp]> = [
    ['outside the roots', () => url(join(outside, 'secret.bin')), /outside the endpoint's data_roots/],
    ['a .. escape', () => `file://${root}/../outside/secret.bin`, /\.\. segment/],
    ['a hard link to a file outside', () => url(join(root, 'hard.bin')), /more than one hard link \(the endpoint config's allow_hard_links is off\)/],
    ['a directory', () => url(join(root, 'sub')), /not a regular file \(a directory\)/],
    ['a FIFO', () => url(join(root, 'pipe')), /not a regular file \(a FIFO\)/],
    ['another host', () => `file://elsewhere${root}/data.bin`, /names host elsewhere/],
  ];

  it.each(cases)('%s', async (_name, make, why) => {
    const open = vi.spyOn(promises, 'open');
    const { ds, objects } = sources();
    const u = make();
    const err = await failure(ds.read(u, 0, 10));
    expect(err.code).toBe('FERRY_DATA_PATH_REFUSED');
    expect(err.message).toContain(u);
    expect(err.message).toMatch(why);
    expect(open).not.toHaveBeenCalled();
    expect(objects.reads).toBe(0);
  });

  it('the spy sees the opens of files that are read (so the cases above can fail)', async () => {
    const open = vi.spyOn(promises, 'open');
    await sources().ds.read(url(join(root, 'data.bin')), 0, 1);
    expect(open).toHaveBeenCalledWith(join(root, 'data.bin'), expect.any(Number));
  });

  it('reads a file with several hard links when the config allows them', async () => {
    const r = await sources([root], true).ds.read(url(join(root, 'hard.bin')), 0, 10);
    expect(r.data.equals(DATA.subarray(0, 10))).toBe(true);
  });

    it('refuses every file when data_roots is empty', async () => {
    const err = await failure(sources([]).ds.read(url(join(root, 'data.bin')), 0, 1));
    expect(err).toMatchObject({ code: 'FERRY_DATA_PATH_REFUSED', message: expect.stringContaining('data_roots is empty') });
  });
});

describe('paths inside a root that lead to no readable file there: one answer, naming only the URL asked for', () => {
  const cases: Array<[string, string]> = [
    ['a missing file', 'nope.bin'],
    ['a link to an existing file outside', 'escape.bin'],
    ['a link to a file in a directory outside', 'escape-dir/secret.bin'],
    ['a link to a missing file outside', 'dangling-out.bin'],
    ['a link to a missing file inside', 'dangling-in.bin'],
    ['a loop of links', 'loop-a'],
  ];

  it.each(cases)('%s', async (_name, rel) => {
    const open = vi.spyOn(promises, 'open');
    const u = url(join(root, rel));
    const err = await failure(sources().ds.read(u, 0, 10));
    expect({ code: err.code, message: err.message }).toEqual({ code: 'FERRY_DATA_NOT_FOUND', message: `no readable file inside the endpoint's data_roots at ${u}` });
    expect(err.message).not.toContain(outside);
    expect(open).not.toHaveBeenCalled();
  });
});

describe('object references with site locations', () => {
  it('reads from a location holding the object\'s bytes, without asking the cache', async () => {
    const { ds, objects } = sources();
    const key = JSON.stringify({ $ref: ID, locations: [url(join(root, 'data.bin'))] });
    const r = await ds.read(key, 2 * MiB, 2 * MiB + 100);
    expect(r.data.equals(DATA.subarray(2 * MiB, 2 * MiB + 100))).toBe(true);
    expect(r).toMatchObject({ size: DATA.length, sha256: SHA, source: 'location' });
    expect(objects.reads).toBe(0);
  });

  it('falls back past unusable locations to the cache, logging why each was skipped', async () => {
    const sameSize = join(root, 'same-size.bin');
    writeFileSync(sameSize, Buffer.alloc(DATA.length, 7));
    const locations = [
      url(join(outside, 'secret.bin')), // refused
      `file://${root}/../outside/secret.bin`, // refused
      url(join(root, 'escape.bin')), // refused
      url(join(root, 'missing.bin')), // not found
      url(join(root, 'sub', 'with space#1.txt')), // wrong size
      url(sameSize), // right size, other bytes
    ];
    const { ds, objects } = sources();
    const lines: string[] = [];
    vi.stubEnv('FERRY_LOG', 'debug');
    const logged = new DataSources({ files: new SiteFiles({ roots: [root], log }), objects, log: createLogger({}, (l) => void lines.push(l)) });
    vi.unstubAllEnvs();
    const r = await logged.read(JSON.stringify({ $ref: ID, locations }), 5, 25);
    expect(r.data.equals(DATA.subarray(5, 25))).toBe(true);
    expect(r.source).toBe('cache');
    expect(objects.reads).toBe(1);
    const reasons = lines.map((l) => JSON.parse(l) as { msg: string; reason: string }).filter((l) => l.msg.startsWith('data location not used')).map((l) => l.reason);
    expect(reasons).toHaveLength(locations.length);
    expect(reasons[0]).toMatch(/^FERRY_DATA_PATH_REFUSED/);
    expect(reasons[3]).toMatch(/^FERRY_DATA_NOT_FOUND/);
    expect(reasons[4]).toMatch(/has 5 bytes/);
    expect(reasons[5]).toMatch(/sha256 .* is not the object's/);
    // The same through the plain path, for completeness: no locations, the cache.
    expect((await ds.read(ID, 0, 3)).data.equals(DATA.subarray(0, 3))).toBe(true);
  });

  it('stops using a location whose file changed, and answers NOT_FOUND (FERRY_DATA_NOT_FOUND to the task) for an unknown object', async () => {
    const copy = join(root, 'copy.bin');
    writeFileSync(copy, DATA);
    const { ds, objects } = sources();
    const key = JSON.stringify({ $ref: ID, locations: [url(copy)] });
    expect((await ds.read(key, 0, 8)).source).toBe('location');
    const changed = Buffer.from(DATA);
    changed[0] = changed[0]! ^ 1;
    writeFileSync(copy, changed);
    utimesSync(copy, new Date(), new Date(Date.now() + 5000));
    const r = await ds.read(key, 0, 8);
    expect(r.source).toBe('cache');
    expect(r.data.equals(DATA.subarray(0, 8))).toBe(true);
    expect(objects.reads).toBe(1);
    const unknown = await failure(ds.read(JSON.stringify({ $ref: 'd'.repeat(64), locations: [url(copy)] }), 0, 1));
    expect(unknown.code).toBe('NOT_FOUND');
  });
});
