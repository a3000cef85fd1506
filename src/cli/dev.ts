// `ferry dev` (what `npm start` runs): the embedded default. The gateway in workerd with its state
// on local disk, a local endpoint named "local" registered and started, and the URL, a development
// token and the endpoint id printed and written to .ferry/dev.json. Ctrl-C stops both cleanly.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '../sdk/client';
import { writeCredentials } from '../endpoint/ferry-home';
import { PROJECT_ROOT, startGatewayProcess } from './gateway-process';
import { ensureDevSecret, mintUserToken } from './tokens';

export interface DevOptions {
  port: number;
  endpointName: string;
}

/**
 * The dashboard, signed in with the development token: in the fragment, which browsers never send
 * to a server nor in a Referer; the page moves it to session storage and out of the history.
 */
export function dashboardLink(gatewayUrl: string, token: string): string {
  return `${gatewayUrl}/#token=${encodeURIComponent(token)}`;
}

export async function runDev(options: DevOptions): Promise<void> {
  const home = process.env.FERRY_HOME || join(PROJECT_ROOT, '.ferry');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const secret = ensureDevSecret(join(PROJECT_ROOT, '.dev.vars'));
  process.stdout.write(`Starting the gateway (workerd) on 127.0.0.1:${options.port || 'any free port'} …\n`);
  const gateway = await startGatewayProcess({ port: options.port, persistTo: join(home, 'state'), onOutput: (t) => process.stderr.write(t) });
  let endpoint: ChildProcess | null = null;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nStopping …\n');
    if (endpoint && endpoint.exitCode === null) {
      const exited = new Promise((r) => endpoint!.once('exit', r));
      endpoint.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    await gateway.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    const token = await mintUserToken({ secret, sub: 'dev-user', expiresIn: '30d' });
    const client = new Client({ url: gateway.url, token });
    const reg = await client.registerEndpoint({ endpoint_name: options.endpointName, display_name: 'Local processes (ferry dev)' });
    writeCredentials({
      endpoint_name: options.endpointName, endpoint_id: reg.endpoint_id, gateway_url: gateway.url,
      connection_url: reg.task_queue_info.connection_url, token: reg.token,
    }, home);
    endpoint = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'ferry.js'), 'endpoint', 'start', options.endpointName], {
      cwd: PROJECT_ROOT, stdio: 'inherit', env: { ...process.env, FERRY_HOME: home },
    });
    endpoint.on('exit', (code) => {
      if (!stopping) {
        process.stderr.write(`The endpoint exited (code ${code}); stopping.\n`);
        void stop(1);
      }
    });
    const devInfo = { gateway_url: gateway.url, token, endpoint_id: reg.endpoint_id };
    writeFileSync(join(home, 'dev.json'), JSON.stringify(devInfo, null, 2) + '\n', { mode: 0o600 });
    process.stdout.write(
      [
        '',
        `Ferry is running.`,
        `  gateway:     ${gateway.url}`,
        `  endpoint_id: ${reg.endpoint_id}   (local)`,
        `  token:       ${token}`,
        `  (also in ${join(home, 'dev.json')})`,
        `  dashboard:   ${dashboardLink(gateway.url, token)}`,
        `               (signs you in; the page takes the token out of the address at once)`,
        '',
        'Try it:',
        `  export FERRY_TOKEN=$(node -p 'require("./.ferry/dev.json").token')`,
        `  curl -s -H "Authorization: Bearer $FERRY_TOKEN" -H 'content-type: application/json' \\`,
        `       -d '{"function_name":"add","function_code":"(a, b) => a + b"}' ${gateway.url}/v3/functions`,
        '',
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
  } catch (err) {
    process.stderr.write(`ferry dev failed: ${(err as Error).message}\n`);
    await stop(1);
  }
}
