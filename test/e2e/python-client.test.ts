// The Python client (clients/python) through the whole path: its unittest files run with Debian's
// /usr/bin/python3 against a real gateway and an endpoint with Python enabled (one stack for the
// file), with FERRY_URL, FERRY_TOKEN and FERRY_ENDPOINT set. Each module is one test here, so a
// failure names its area; the Python output is printed when it fails.

import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/cli/gateway-process';
import { missingServiceError } from '../helpers/missing-service';
import { startStack, type EndpointHandle, type Stack, waitForWorkers } from '../helpers/stack';

const SYSTEM_PYTHON = '/usr/bin/python3';
const CLIENT_DIR = join(PROJECT_ROOT, 'clients', 'python');

let stack: Stack;
let endpoint: EndpointHandle;
let env: Record<string, string> = {};
/** The install test needs no stack: it runs while the stack starts. */
let install: Promise<{ code: number | null; output: string }>;

function pythonReady(): boolean {
  const probe = spawnSync(SYSTEM_PYTHON, ['-c', 'import numpy, nbformat, venv, setuptools'], { stdio: 'ignore' });
  return probe.status === 0;
}

/** Runs `python3 -m unittest <modules>` in clients/python; answers its exit code and output. */
function unittest(modules: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, ['-m', 'unittest', '-v', ...modules], {
      cwd: CLIENT_DIR,
      env: { ...process.env, ...env, PYTHONPATH: CLIENT_DIR, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function expectPasses(modules: string[], timeoutMs = 50_000, running?: Promise<{ code: number | null; output: string }>): Promise<string> {
  const { code, output } = await (running ?? unittest(modules, timeoutMs));
  if (code !== 0) console.log(output);
  expect(code, `python3 -m unittest ${modules.join(' ')} failed:\n${output.slice(-6000)}`).toBe(0);
  expect(output).toMatch(/\nOK/);
  return output;
}

beforeAll(async () => {
  if (!pythonReady()) throw missingServiceError(`${SYSTEM_PYTHON} with numpy, nbformat, venv and setuptools`, 'python-client-packages.txt');
  install = unittest(['tests.test_install'], 100_000);
  stack = await startStack();
  const alice = await stack.client('alice');
  endpoint = await stack.createEndpoint('py', 'alice', {
    task_timeout_s: 20,
    task_memory_mb: 1024,
    python: { enabled: true, executable: SYSTEM_PYTHON },
  });
  endpoint.start();
  env = { FERRY_URL: stack.gateway.url, FERRY_TOKEN: await stack.tokenFor('alice'), FERRY_ENDPOINT: endpoint.endpointId };
  await waitForWorkers(alice, endpoint.endpointId, 2);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('the Python client', () => {
  it('refuses closures, lambdas and functions without source before sending; reads the config as the CLI does; retries and bounds answers', async () => {
    await expectPasses(['tests.test_source', 'tests.test_config', 'tests.test_http']);
  });

  it('installs into a venv with pip install --no-build-isolation', async () => {
    await expectPasses(['tests.test_install'], 0, install);
  });

  it('against the stack: numpy on a 1 MiB slice of 64 MiB (one chunk served), arrays back, the executor maps 2,000 inputs in order, errors carry codes', async () => {
    const output = await expectPasses(['tests.test_live']);
    const mapped = /executor: 2,000 Python tasks mapped in ([\d.]+) s/.exec(output);
    console.log(mapped ? mapped[0] : output.slice(-2000));
  });

  it('the notebook validates, is committed without outputs, and its code cells run against the stack', async () => {
    await expectPasses(['tests.test_notebook']);
  });
});
