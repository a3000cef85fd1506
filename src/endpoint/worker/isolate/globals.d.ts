// What the host sets on the isolate's global object before each script runs (isolated-vm-sandbox.ts).

declare var __ferryWrite: ((text: string) => boolean) | undefined;
declare var __ferryRead: import('./types').HostReference<[key: string, start: number, end: number], import('./types').ReadAnswer> | undefined;
declare var __ferryDataRefs: import('./types').WithRefs | undefined;
declare var console: Readonly<Record<'log' | 'info' | 'debug' | 'warn' | 'error', (...args: unknown[]) => void>>;
