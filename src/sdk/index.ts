// The SDK's public surface.
export { Client } from './client';
export type { BatchSubmission, ClientOptions, RegisterFunctionOptions, ResultOptions, SubmitBatchOptions, SubmitOptions, WaitOptions } from './client';
export { FerryApiError, TaskCancelledError, TaskFailedError, WaitTimeoutError } from './errors';
export { resultRefOf } from './objects';
export type { ByteRange, GetOptions, IngestFilter, ObjectHead, PutData, PutOptions, PutProgress } from './objects';
export { SseError, SseParser, streamEvents } from './event-stream';
export type { EventStreamOptions, EventsSelector, FerryEvent, SseEvent } from './event-stream';
export { Executor, TaskFuture } from './executor';
export type { ExecutorOptions, SubmitWithOptions } from './executor';
