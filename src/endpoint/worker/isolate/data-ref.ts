// Data by reference: an argument `{"$ref": id}`, `{"$ref": "file:///abs/path"}` or
// `{"$ref": id, "locations": ["file:///…"]}` (top level of args, or a kwargs value) becomes a
// DataRef. Nothing is fetched until a method is called: size() and sha256() ask the host once for
// the size and digest; slice(start, end) (bytes start..end exclusive) reads only that range, which
// the agent serves from a site file or the chunks covering it; bytes(), text() (UTF-8), json() read
// all. A range outside the data is a RangeError. The agent decides where bytes come from and which
// paths may be read; what goes to the host is a ref key (src/endpoint/agent/data-sources.ts): the
// `$ref` alone, or JSON with the locations and/or `digest: true` (a file's sha256 is computed only
// when asked for, so the size answer may carry none). The host callback is removed from the global
// object and captured by the runner (runner.ts), so user code cannot call it directly. What counts
// as a reference is src/functions/data-ref.ts's isDataRef, bundled in by scripts/build-isolate.ts.
import { isDataRef } from '../../../functions/data-ref';

(function () {
  'use strict';
  type ReadBytes = import('./types').ReadBytes;
  type Payload = import('./types').Payload;
  interface Info { size: number; sha256: string }
  const read = globalThis.__ferryRead!;
  delete globalThis.__ferryRead;
  const call = async (id: string, key: string, start: number, end: number): Promise<ReadBytes> => {
    const r = await read.apply(undefined, [key, start, end], { arguments: { copy: true }, result: { promise: true } });
    if (!('refused' in r)) return r;
    const { code, message } = r.refused;
    let x: Error;
    if (code === 'FERRY_DATA_NOT_FOUND') {
      x = new Error(/^[0-9a-f]{64}$/.test(id) ? 'data reference ' + id + ' names no object this endpoint may read' : message);
      x.name = 'DataNotFound';
    } else if (code === 'FERRY_DATA_PATH_REFUSED') {
      x = new Error(message);
      x.name = 'DataPathRefused';
    } else if (code === 'RANGE_NOT_SATISFIABLE') x = new RangeError(code + ': ' + message);
    else {
      x = new Error(code ? code + ': ' + message : message);
      x.name = 'DataReadError';
    }
    throw x;
  };
  const utf8 = (bytes: Uint8Array): string => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
    return decodeURIComponent(escape(s));
  };
  class DataRef {
    #id: string;
    #locations: readonly string[] | undefined;
    #info: Info | null = null;
    constructor(id: string, locations: readonly string[] | undefined) {
      this.#id = id;
      this.#locations = locations;
    }
    get id(): string {
      return this.#id;
    }
    #key(digest: boolean): string {
      if (!this.#locations && !digest) return this.#id;
      const k: { $ref: string; locations?: readonly string[]; digest?: true } = { $ref: this.#id };
      if (this.#locations) k.locations = this.#locations;
      if (digest) k.digest = true;
      return JSON.stringify(k);
    }
    async #meta(): Promise<Info> {
      if (!this.#info) {
        const r = await call(this.#id, this.#key(false), 0, 0);
        this.#info = { size: r.size, sha256: r.sha256 };
      }
      return this.#info;
    }
    async size(): Promise<number> {
      return (await this.#meta()).size;
    }
    async sha256(): Promise<string> {
      const info = await this.#meta();
      if (!info.sha256) info.sha256 = (await call(this.#id, this.#key(true), 0, 0)).sha256;
      return info.sha256;
    }
    async slice(start: number, end?: number): Promise<Uint8Array> {
      // A range given whole goes in one read, whose answer carries the size and digest; the size
      // is asked for first only when the range needs it (no end, an empty range).
      if (!this.#info && Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end!) {
        let r: ReadBytes | null = null;
        try {
          r = await call(this.#id, this.#key(false), start, end!);
        } catch (e) {
          if (!(e instanceof RangeError)) throw e;
        }
        if (r) this.#info = { size: r.size, sha256: r.sha256 };
        if (r && end! <= r.size && r.data.byteLength === end! - start) return new Uint8Array(r.data);
      }
      const size = (await this.#meta()).size;
      if (end === undefined) end = size;
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > size) {
        throw new RangeError('slice(' + start + ', ' + end + ') is outside the object (' + size + ' bytes)');
      }
      if (start === end) return new Uint8Array(0);
      return new Uint8Array((await call(this.#id, this.#key(false), start, end)).data);
    }
    async bytes(): Promise<Uint8Array> {
      return this.slice(0, (await this.#meta()).size);
    }
    async text(): Promise<string> {
      return utf8(await this.bytes());
    }
    async json(): Promise<unknown> {
      return JSON.parse(await this.text());
    }
    toJSON(): { $ref: string; locations?: string[] } {
      return this.#locations ? { $ref: this.#id, locations: this.#locations.slice() } : { $ref: this.#id };
    }
  }
  const toRef = (v: unknown): unknown => (isDataRef(v) ? new DataRef(v.$ref, v.locations ? Object.freeze(v.locations.slice()) : undefined) : v);
  globalThis.__ferryDataRefs = (payload: Payload): unknown[] => {
    const args = payload.args.map(toRef);
    if (payload.kwargs === undefined) return args;
    const kwargs: Record<string, unknown> = {};
    for (const k of Object.keys(payload.kwargs)) kwargs[k] = toRef(payload.kwargs[k]);
    return args.concat([kwargs]);
  };
})();
