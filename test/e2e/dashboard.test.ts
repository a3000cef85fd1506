// The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
// gateway and endpoint: sign in, see the endpoint online, watch 200 tasks submitted through the
// SDK reach success in the table without a reload, open a task, cancel one, and find both tasks of
// a two-step chain in a lineage graph. The page must raise no error (a CSP violation is one) and
// show users' output as text. Screenshots go to test/artifacts/dashboard/.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultRef } from '../../src/protocol/api';
import { dashboardLink } from '../../src/cli/dev';
import { PROJECT_ROOT } from '../../src/cli/gateway-process';
import type { Client } from '../../src/sdk/client';
import { launchChromium } from '../helpers/browser';
import { startStack, waitForWorkers, type EndpointHandle } from '../helpers/stack';

const ARTIFACTS = join(PROJECT_ROOT, 'test', 'artifacts', 'dashboard');
const HOSTILE = '<img src=x onerror="window.__pwned = 1">';

let stack: Awaited<ReturnType<typeof startStack>>;
let alice: Client;
let token: string;
let endpoint: EndpointHandle;
let idle: EndpointHandle;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function shot(name: string, fullPage = true): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
  stack = await startStack();
  alice = await stack.client('alice');
  token = await stack.tokenFor('alice');
  endpoint = await stack.createEndpoint('beamline', 'alice', { provider: { type: 'local', init_blocks: 1, max_blocks: 1, nodes_per_block: 1, max_workers_per_node: 2 } });
  endpoint.start();
  // Registered, never started: its tasks wait, so one can be cancelled while it is still waiting.
  idle = await stack.createEndpoint('offline-site', 'alice');
  await waitForWorkers(alice, endpoint.endpointId, 2);
  page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
  page.on('console', (msg) => {
    // Lineage answers 404 until a task's record is written (and for an object no task used): the
    // page expects those, but Chromium logs every 4xx fetch.
    if (msg.type() === 'error' && !(/status of 404/.test(msg.text()) && new URL(msg.location().url, stack.gateway.url).pathname.startsWith('/v3/provenance/'))) {
      pageErrors.push(`${msg.text()} (${msg.location().url})`);
    }
  });
  page.on('pageerror', (err) => pageErrors.push(err.message));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the dashboard in Chromium', () => {
  it('signs in with a pasted token and shows the endpoint online', async () => {
    await page.goto(`${stack.gateway.url}/`);
    await page.getByLabel('Access token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`section[data-endpoint-id="${endpoint.endpointId}"][data-status="online"]`).waitFor({ timeout: 20_000 });
    await page.locator(`section[data-endpoint-id="${idle.endpointId}"][data-status="offline"]`).waitFor();
    const card = page.locator(`section[data-endpoint-id="${endpoint.endpointId}"]`);
    expect(await card.locator('dd').first().textContent()).toMatch(/of 2$/);
    expect(await card.locator('svg.chart').getAttribute('aria-label')).toMatch(/^Last hour/);
    expect(await page.evaluate(() => sessionStorage.getItem('ferry.token'))).toBe(token);
    await shot('endpoints');
  });

  it('watches 200 tasks submitted through the SDK reach success in the table, without a reload', async () => {
    const fn = await alice.registerFunction('(i) => ({ i, twice: 2 * i })', { name: 'twice' });
    await page.goto(`${stack.gateway.url}/#/tasks?endpoint_id=${endpoint.endpointId}`);
    await page.locator('table.tasks').waitFor();
    // A reload or navigation would lose this.
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
    const { task_ids } = await alice.submitBatch(endpoint.endpointId, fn, Array.from({ length: 200 }, (_, i) => [i]));
    expect(task_ids).toHaveLength(200);
    await page.waitForFunction(() => document.querySelectorAll('table.tasks tbody tr[data-status="success"]').length === 200, undefined, { timeout: 90_000 });
    expect(await page.locator('#task-counts .count[data-status="success"] .n').textContent()).toBe('200');
    // Driven by the endpoint's event stream, not by reading the list again.
    expect(await page.locator('#live-mode').getAttribute('data-mode')).toBe(stack.taskStore === 'redis' ? 'polling' : 'streaming');
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    const shown = await page.locator('table.tasks tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')));
    expect(new Set(shown)).toEqual(new Set(task_ids));
    await shot('tasks', false);

    // Filters by keyboard alone: the status filter, then Apply; the address keeps the filter.
    await page.locator('#filter-status').focus();
    await page.keyboard.press('End'); // the last state: cancelled
    await page.keyboard.press('Tab'); // the function filter …
    await page.keyboard.press('Tab'); // the endpoint filter …
    await page.keyboard.press('Tab'); // the workflow filter …
    await page.keyboard.press('Tab'); // … Apply
    await page.keyboard.press('Enter');
    await page.waitForURL(/status=cancelled/);
    await page.locator('#task-counts', { hasText: '0 tasks shown' }).waitFor();
    expect(page.url()).toContain(`endpoint_id=${endpoint.endpointId}`);
    await page.goBack();
    await page.locator('#task-counts .count[data-status="success"]').waitFor();

    // Open one from the table: its result, its output, its timeline.
    await page.locator(`tr[data-task-id="${task_ids[7]}"] th a`).click();
    await page.locator('#task-result').waitFor();
    expect(JSON.parse((await page.locator('#task-result').textContent())!)).toEqual({ i: 7, twice: 14 });
    expect(await page.locator('#task-status').textContent()).toBe('success');
    expect(await page.locator('svg.timeline').getAttribute('aria-label')).toMatch(/waiting-for-ep, then .*success/);
    await page.getByRole('heading', { name: 'Arguments' }).waitFor();
    await page.locator('table.args td code', { hasText: '7' }).waitFor({ timeout: 20_000 });
    await shot('task');
  });

  it("shows a task's output as text, never as HTML", async () => {
    const fn = await alice.registerFunction(`() => { console.log(${JSON.stringify(HOSTILE)}); return ${JSON.stringify(HOSTILE)} }`, { name: 'hostile' });
    const id = await alice.submit(endpoint.endpointId, fn, []);
    expect(await alice.result(id)).toBe(HOSTILE);
    await page.goto(`${stack.gateway.url}/#/task/${id}`);
    await page.locator('#task-stdout').waitFor();
    expect(await page.locator('#task-result').textContent()).toBe(JSON.stringify(HOSTILE));
    expect((await page.locator('#task-stdout').textContent())!.trim()).toBe(HOSTILE);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('cancels a waiting task from its page', async () => {
    const fn = await alice.registerFunction('(x) => x', { name: 'identity' });
    const id = await alice.submit(idle.endpointId, fn, [1]);
    await page.goto(`${stack.gateway.url}/#/task/${id}`);
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await page.locator('#task-status', { hasText: 'cancelled' }).waitFor();
    expect((await alice.getTask(id)).status).toBe('cancelled');
    expect(await page.getByRole('button', { name: 'Cancel task' }).count()).toBe(0);
  });

  it('draws the lineage graph of a two-step chain with both tasks, each linking to its page', async () => {
    const make = await alice.registerFunction('(n) => new Uint8Array(n).fill(7)', { name: 'make_bytes' });
    const measure = await alice.registerFunction('async (ref) => (await ref.slice(0, 4)).length', { name: 'measure' });
    const first = await alice.submit(endpoint.endpointId, make, [1024]);
    const made = await alice.getTask(first, { wait: 30 });
    expect(made.details.result_ref).toBe(true);
    const ref = made.result as ResultRef;
    const second = await alice.submit(endpoint.endpointId, measure, [{ $ref: ref.$ref }]);
    expect(await alice.result(second, { timeout: 30 })).toBe(4);

    await page.goto(`${stack.gateway.url}/#/lineage/task/${second}`);
    const firstNode = page.locator(`svg.lineage a[data-kind="task"][data-id="${first}"]`);
    const secondNode = page.locator(`svg.lineage a[data-kind="task"][data-id="${second}"]`);
    await firstNode.waitFor({ timeout: 20_000 });
    await secondNode.waitFor();
    await page.locator(`svg.lineage a[data-kind="object"][data-id="${ref.$ref}"]`).waitFor();
    await shot('lineage');
    // Keyboard: the first task's node is a link, focusable, and opens its page.
    await firstNode.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(`**/#/task/${encodeURIComponent(first)}`);
    await page.getByRole('heading', { name: /^Task / }).waitFor();

    // The object between them: its record, and who read how much of the caller's objects.
    await page.goto(`${stack.gateway.url}/#/object/${ref.$ref}`);
    await page.getByRole('heading', { name: /^Object / }).waitFor();
    const facts = await page.locator('dl.facts').textContent();
    expect(facts).toContain('(1024 bytes)');
    expect(facts).toContain(ref.sha256);
    await page.getByRole('link', { name: 'Objects' }).click();
    await page.getByRole('table', { name: 'Who read them' }).waitFor();
    expect(await page.getByRole('table', { name: 'Who read them' }).textContent()).toContain(`endpoint:${endpoint.endpointId}`);
    await shot('objects');
  });

  it("signs in from `ferry dev`'s link and leaves no token in the address or the history", async () => {
    const fresh = await browser.newPage();
    await fresh.goto(dashboardLink(stack.gateway.url, token));
    await fresh.locator('section[data-endpoint-id]').first().waitFor();
    expect(fresh.url()).not.toContain(token);
    expect(fresh.url()).toMatch(/#\/endpoints$/);
    await fresh.getByRole('button', { name: 'Sign out' }).click();
    expect(await fresh.evaluate(() => sessionStorage.getItem('ferry.token'))).toBeNull();
    await fresh.getByLabel('Access token').waitFor();
    // The entry the link made was replaced: back leads to where the tab was before it.
    await fresh.goBack();
    expect(fresh.url()).toBe('about:blank');
    await fresh.close();
  });

  it('raised no error in the page (a CSP violation would be one)', () => {
    expect(pageErrors).toEqual([]);
  });
});
