// The scripts the sandbox evaluates in each isolate (src/endpoint/worker/isolate-sources.ts) are
// what `npm run build:isolate` compiles from src/endpoint/worker/isolate today.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ISOLATE_SOURCES_MODULE, renderIsolateSources } from './build-isolate';

describe('src/endpoint/worker/isolate-sources.ts', () => {
  it('equals a fresh build of src/endpoint/worker/isolate (run `npm run build:isolate` after changing it)', async () => {
    expect(readFileSync(ISOLATE_SOURCES_MODULE, 'utf8')).toBe(await renderIsolateSources());
  });
});
