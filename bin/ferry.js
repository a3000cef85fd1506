#!/usr/bin/env node
// Entry point of the `ferry` command: loads the TypeScript CLI through tsx in this same process,
// so that signals (SIGKILL included) reach the agent itself, not a wrapper. Worker processes,
// which load isolated-vm, are started with the flags they need by the manager.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
