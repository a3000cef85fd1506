// The `ferry` command line.

import { Command, InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import { FerryError } from '../protocol/errors';
import { startEndpoint } from '../endpoint/main';
import { createLogger } from '../endpoint/log';
import { runDev } from './dev';
import { PROJECT_ROOT } from './gateway-process';
import { mintUserToken, readDevSecret } from './tokens';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number (1-65535)');
  return n;
}

function fail(err: unknown): never {
  const message = err instanceof FerryError ? `${err.code}: ${err.message}` : (err as Error).message;
  process.stderr.write(`ferry: ${message}\n`);
  process.exit(1);
}

const program = new Command();
program.name('ferry').description('Ferry: a federated function service for science').showHelpAfterError();

program
  .command('dev')
  .description('run the gateway in workerd (state on local disk) and a local endpoint named "local"')
  .option('--port <port>', 'gateway port (or FERRY_PORT)', port, Number(process.env.FERRY_PORT) || 8787)
  .action(async (opts: { port: number }) => {
    await runDev({ port: opts.port, endpointName: 'local' }).catch(fail);
  });

const endpoint = program.command('endpoint').description('run and manage endpoints');
endpoint
  .command('start')
  .description('start the endpoint NAME in the foreground')
  .argument('<name>', 'endpoint name')
  .option('--config <path>', 'YAML config (default: $FERRY_HOME/endpoints/NAME/config.yaml, then endpoint-config/NAME.yaml)')
  .action(async (name: string, opts: { config?: string }) => {
    const log = createLogger({ component: 'agent' });
    let agent: Awaited<ReturnType<typeof startEndpoint>> | null = null;
    try {
      agent = await startEndpoint({
        name,
        ...(opts.config ? { configPath: opts.config } : {}),
        log,
        onFatal: (error) => {
          process.stderr.write(`ferry: endpoint ${name} stopped: ${error.code}: ${error.message}\n`);
          void (agent?.stop() ?? Promise.resolve()).finally(() => process.exit(1));
        },
      });
      const running = agent;
      const stop = () => void running.stop().finally(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('token')
  .description('mint a development user token with the key in .dev.vars')
  .option('--sub <subject>', 'the user the token names', 'dev-user')
  .option('--expires <duration>', 'lifetime, e.g. 1h, 30d', '30d')
  .action(async (opts: { sub: string; expires: string }) => {
    try {
      const secret = readDevSecret(join(PROJECT_ROOT, '.dev.vars'));
      process.stdout.write((await mintUserToken({ secret, sub: opts.sub, expiresIn: opts.expires })) + '\n');
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync(process.argv);
