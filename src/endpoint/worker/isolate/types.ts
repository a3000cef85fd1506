// What crosses between the host (isolated-vm-sandbox.ts) and the scripts in this folder, which run
// inside the isolate: no Node, no DOM, only the ES library and what the host puts on the global
// object. Each script reads its host callback from the global object and deletes it, so the
// function cannot call it directly.

/** What the runner inside the isolate answers; plain strings only, so nothing of the isolate leaks out. */
export type RunnerAnswer =
  | { kind: 'ok'; json: string }
  | { kind: 'bytes'; data: Uint8Array }
  | { kind: 'threw'; name: string; message: string; stack?: string }
  | { kind: 'unserializable'; name: string; message: string };

/**
 * The host's answer to a read of a DataRef (isolated-vm-sandbox.ts): the bytes and what is known of
 * the object, or why not as a code and a message (FERRY_DATA_NOT_FOUND, FERRY_DATA_PATH_REFUSED,
 * RANGE_NOT_SATISFIABLE, …), never a code inside a message.
 */
export type ReadAnswer = ReadBytes | ReadRefusal;

export interface ReadBytes {
  data: ArrayBuffer;
  size: number;
  sha256: string;
}

export interface ReadRefusal {
  refused: { code: string; message: string };
}

/** The part of isolated-vm's Reference the isolate uses: a call into the host. */
export interface HostReference<A extends unknown[], R> {
  apply(receiver: undefined, args: A, options: { arguments: { copy: true }; result: { promise: true } }): Promise<R>;
}

/** The payload of a task as the runner parses it. */
export type { Payload } from '../../../protocol/api';

/** Turns a payload into the function's arguments, DataRefs in place of references (data-ref.ts). */
export type WithRefs = (payload: import('../../../protocol/api').Payload) => unknown[];
