// The SDK's public surface.
export { Client } from './client';
export type { BatchSubmission, ClientOptions, RegisterFunctionOptions, ResultOptions, SubmitBatchOptions, SubmitOptions, WaitOptions } from './client';
export { FerryApiError, TaskCancelledError, TaskFailedError, WaitTimeoutError } from './errors';
export { resultRefOf } from './objects';
export type { ByteRange, GetOptions, IngestFilter, ObjectHead, PutData, PutOptions, PutProgress } from './objects';
