// The `ferry` command line.

import { Command, InvalidArgumentError } from 'commander';
import { join } from 'node:path';
import { fail } from './cli-error';
import { runDev } from './dev';
import { registerEndpointCommands } from './endpoint-commands';
import { registerGatewayCommand } from './gateway-command';
import { registerKeyCommands } from './key-commands';
import { PROJECT_ROOT } from './gateway-process';
import { registerLineageCommand } from './lineage-command';
import { login } from './login';
import { freshGatewayAccess, logout, oidcLogin } from './oidc-login';
import { registerPutCommand } from './put-command';
import { registerSharingCommands } from './sharing-commands';
import { mintUserToken, readDevSecret } from './tokens';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number (1-65535, or 0 for any free port)');
  return n;
}

const program = new Command();
program.name('ferry').description('Ferry: a federated function service for science').showHelpAfterError();

program
  .command('dev')
  .description('run the gateway in workerd (state on local disk) and a local endpoint named "local"')
  .option('--port <port>', 'gateway port (or FERRY_PORT)', port, process.env.FERRY_PORT ? port(process.env.FERRY_PORT) : 8787)
  .action(async (opts: { port: number }) => {
    await runDev({ port: opts.port, endpointName: 'local' }).catch(fail);
  });

registerEndpointCommands(program);
registerGatewayCommand(program);
registerPutCommand(program);
registerLineageCommand(program);
registerKeyCommands(program);
registerSharingCommands(program);

program
  .command('login')
  .description('sign in: --oidc through your institution (device flow), or save a --token; both kept in $FERRY_HOME/user.json (0600)')
  .option('--gateway <url>', 'the gateway, e.g. https://ferry.example.org (default with --oidc: FERRY_URL, then the saved one)')
  .option('--token <token>', 'your user token (checked with the gateway, then saved)')
  .option('--oidc', "sign in through the gateway's OpenID provider: prints a URL and a code, waits, saves the tokens")
  .option('--provider <name>', 'with --oidc: which of the gateway\'s providers (default: its first)')
  .action(async (opts: { gateway?: string; token?: string; oidc?: boolean; provider?: string }) => {
    if (opts.oidc) {
      await oidcLogin({ ...(opts.gateway ? { gateway: opts.gateway } : {}), ...(opts.provider ? { provider: opts.provider } : {}) }).catch(fail);
      return;
    }
    if (!opts.gateway || !opts.token) fail(new Error('ferry login needs --oidc, or --gateway URL and --token T'));
    await login({ gateway: opts.gateway, token: opts.token }).catch(fail);
  });

program
  .command('logout')
  .description('forget the saved sign-in ($FERRY_HOME/user.json); a refresh token is revoked at its provider')
  .action(async () => {
    await logout().catch(fail);
  });

program
  .command('token')
  .description('mint a development user token with the key in .dev.vars; --current: print the saved sign-in\'s token')
  .option('--sub <subject>', 'the user the token names', 'dev-user')
  .option('--expires <duration>', 'lifetime, e.g. 1h, 30d', '30d')
  .option('--current', 'print the token of the saved sign-in (ferry login), renewed first if it expires within a minute: export TOKEN=$(ferry token --current)')
  .action(async (opts: { sub: string; expires: string; current?: boolean }) => {
    try {
      if (opts.current) {
        process.stdout.write((await freshGatewayAccess()).token + '\n');
        return;
      }
      const secret = readDevSecret(join(PROJECT_ROOT, '.dev.vars'));
      process.stdout.write((await mintUserToken({ secret, sub: opts.sub, expiresIn: opts.expires })) + '\n');
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync(process.argv);
