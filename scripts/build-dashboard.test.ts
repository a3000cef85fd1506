// The dashboard bundled with the Worker (src/gateway/dashboard/assets.ts) is what
// `npm run build:dashboard` builds from src/dashboard today.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ASSETS_MODULE, renderDashboardAssets } from './build-dashboard';

describe('src/gateway/dashboard/assets.ts', () => {
  it('equals a fresh build of src/dashboard (run `npm run build:dashboard` after changing it)', async () => {
    expect(readFileSync(ASSETS_MODULE, 'utf8')).toBe(await renderDashboardAssets());
  });
});
