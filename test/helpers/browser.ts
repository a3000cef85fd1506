// Headless Chromium for browser tests: Debian's `chromium`, driven by playwright-core through its
// executablePath (never a browser playwright downloads). Missing, it fails the test, naming the package.

import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { missingServiceError } from './missing-service';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw missingServiceError(`Chromium (${CHROMIUM_PATH}, for the dashboard's browser test)`, 'browser-packages.txt');
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}
