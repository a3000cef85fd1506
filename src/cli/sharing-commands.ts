// Sharing from the terminal (issue 19): `ferry endpoint share|unshare|shares|audit NAME`,
// `ferry group set|list|delete`, `ferry function share|unshare|shares ID`.

import type { Command } from 'commander';
import { AuditPage, EndpointShares, FunctionShares, GroupDoc, GroupList, type AuditEvent, type EndpointGrant } from '../protocol/sharing-api';
import { CliError } from './cli-error';
import { action, out, withAccess } from './command-kit';
import { collect, gatewayJson } from './key-commands';
import type { AccessFlags } from './user-config';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An endpoint of yours by name (as registered) or id. */
async function endpointIdOf(flags: AccessFlags, name: string): Promise<string> {
  if (UUID.test(name)) return name;
  const endpoints = (await gatewayJson(flags, 'GET', '/v2/endpoints')) as Array<{ endpoint_id: string; endpoint_name: string }>;
  const found = endpoints.find((e) => e.endpoint_name === name);
  if (!found) throw new CliError(`you have no endpoint named ${name} at the gateway (ferry endpoint list)`);
  return found.endpoint_id;
}

interface GranteeFlags extends AccessFlags {
  user?: string;
  group?: string;
  json?: boolean;
}

function grantee(flags: GranteeFlags): { user: string } | { group: string } {
  if ((flags.user === undefined) === (flags.group === undefined)) throw new CliError('name exactly one of --user ID or --group NAME');
  return flags.user !== undefined ? { user: flags.user } : { group: flags.group! };
}

function describeGrant(g: EndpointGrant): string {
  return `${g.user !== null ? `user ${g.user}` : `group ${g.group}`}  functions=${g.functions === '*' ? 'all' : g.functions.join(',')}  since ${g.created_at}`;
}

function printShares(flags: { json?: boolean }, shares: EndpointShares): void {
  if (flags.json) out(JSON.stringify(shares));
  else out(shares.grants.length === 0 ? 'Not shared.' : shares.grants.map(describeGrant).join('\n'));
}

function describeEvent(e: AuditEvent): string {
  const at = new Date(e.at * 1000).toISOString();
  const what = [e.task_id && `task ${e.task_id}`, e.function_uuid && `function ${e.function_uuid}`, e.status, e.detail && JSON.stringify(e.detail)].filter(Boolean).join('  ');
  return `${at}  ${e.kind.padEnd(15)}  ${e.user ?? '-'}  ${what}`;
}

export function registerSharingCommands(program: Command): void {
  const endpoint = program.commands.find((c) => c.name() === 'endpoint');
  if (!endpoint) throw new Error('register the endpoint commands first');

  withAccess(
    endpoint
      .command('share')
      .description("share your endpoint NAME with a user or one of your groups, for the functions named (their tasks run under the endpoint's account)")
      .argument('<name>', 'endpoint name or id')
      .option('--user <id>', 'a user id')
      .option('--group <name>', 'one of your groups (ferry group set)')
      .option('--function <uuid>', 'a function they may run there, repeatable (the function is theirs to run on this endpoint only)', collect)
      .option('--all-functions', 'any function they may use (yours and those shared with them), within allowed_functions')
      .option('--json', 'print the answer as JSON'),
  ).action(
    action(async (name: string, flags: GranteeFlags & { function?: string[]; allFunctions?: boolean }) => {
      if ((flags.function === undefined) === !flags.allFunctions) throw new CliError('say what they may run: --function UUID (repeatable) or --all-functions');
      const id = await endpointIdOf(flags, name);
      printShares(flags, EndpointShares.parse(await gatewayJson(flags, 'POST', `/v3/endpoints/${id}/shares`, { ...grantee(flags), functions: flags.allFunctions ? '*' : flags.function })));
    }),
  );

  withAccess(
    endpoint.command('unshare').description('end a grant of your endpoint NAME').argument('<name>', 'endpoint name or id').option('--user <id>', 'a user id').option('--group <name>', 'one of your groups').option('--json', 'print the answer as JSON'),
  ).action(
    action(async (name: string, flags: GranteeFlags) => {
      const id = await endpointIdOf(flags, name);
      const query = new URLSearchParams(grantee(flags) as Record<string, string>).toString();
      printShares(flags, EndpointShares.parse(await gatewayJson(flags, 'DELETE', `/v3/endpoints/${id}/shares?${query}`)));
    }),
  );

  withAccess(endpoint.command('shares').description('who your endpoint NAME is shared with').argument('<name>', 'endpoint name or id').option('--json', 'print the answer as JSON')).action(
    action(async (name: string, flags: AccessFlags & { json?: boolean }) => {
      const id = await endpointIdOf(flags, name);
      printShares(flags, EndpointShares.parse(await gatewayJson(flags, 'GET', `/v3/endpoints/${id}/shares`)));
    }),
  );

  withAccess(
    endpoint
      .command('audit')
      .description("your endpoint NAME's audit log, oldest first: tasks (received, started, ended, by whom, which function), sharing changes, key uses, secret revocations, refused attempts")
      .argument('<name>', 'endpoint name or id')
      .option('--cursor <cursor>', 'read on from a cursor printed before')
      .option('--json', 'print every event as one JSON line'),
  ).action(
    action(async (name: string, flags: AccessFlags & { cursor?: string; json?: boolean }) => {
      const id = await endpointIdOf(flags, name);
      let cursor = flags.cursor;
      for (;;) {
        const page = AuditPage.parse(await gatewayJson(flags, 'GET', `/v3/endpoints/${id}/audit?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`));
        for (const e of page.events) out(flags.json ? JSON.stringify(e) : describeEvent(e));
        cursor = page.next_cursor;
        if (!page.more) break;
      }
      if (!flags.json) process.stderr.write(`cursor: ${cursor} (--cursor to read on from here)\n`);
    }),
  );

  const group = program.command('group').description('your groups of users (to share endpoints and functions with)');
  withAccess(group.command('set').description('create the group NAME, or replace its members').argument('<name>').option('--member <id>', 'a user id, repeatable', collect).option('--json', 'print the answer as JSON')).action(
    action(async (name: string, flags: AccessFlags & { member?: string[]; json?: boolean }) => {
      const doc = GroupDoc.parse(await gatewayJson(flags, 'POST', '/v3/groups', { name, members: flags.member ?? [] }));
      out(flags.json ? JSON.stringify(doc) : `${doc.name}: ${doc.members.join(', ') || '(no members)'}`);
    }),
  );
  withAccess(group.command('list').description('your groups and their members').option('--json', 'print the answer as JSON')).action(
    action(async (flags: AccessFlags & { json?: boolean }) => {
      const { groups } = GroupList.parse(await gatewayJson(flags, 'GET', '/v3/groups'));
      out(flags.json ? JSON.stringify({ groups }) : groups.length === 0 ? 'No groups.' : groups.map((g) => `${g.name}: ${g.members.join(', ') || '(no members)'}`).join('\n'));
    }),
  );
  withAccess(group.command('delete').description('delete the group NAME: every grant and share to it ends').argument('<name>')).action(
    action(async (name: string, flags: AccessFlags) => {
      await gatewayJson(flags, 'DELETE', `/v3/groups/${encodeURIComponent(name)}`);
      out(`deleted group ${name}`);
    }),
  );

  const fn = program.command('function').description('your functions: sharing');
  const shareTarget = (c: Command) => c.option('--user <id>', 'a user id').option('--group <name>', 'one of your groups').option('--public', 'everyone').option('--json', 'print the answer as JSON');
  const target = (flags: GranteeFlags & { public?: boolean }): Record<string, string | boolean> => {
    if ([flags.user, flags.group, flags.public].filter((v) => v !== undefined).length !== 1) throw new CliError('name exactly one of --user ID, --group NAME or --public');
    return flags.public ? { public: true } : grantee(flags);
  };
  const printFunctionShares = (flags: { json?: boolean }, s: FunctionShares) =>
    out(flags.json ? JSON.stringify(s) : `${s.function_uuid}: ${[s.public ? 'public' : null, ...s.users.map((u) => `user ${u}`), ...s.groups.map((g) => `group ${g}`)].filter(Boolean).join(', ') || 'not shared'}`);
  withAccess(shareTarget(fn.command('share').description('share your function ID: they may read it and run it on endpoints they may use').argument('<id>'))).action(
    action(async (id: string, flags: GranteeFlags & { public?: boolean }) => printFunctionShares(flags, FunctionShares.parse(await gatewayJson(flags, 'POST', `/v3/functions/${id}/shares`, target(flags))))),
  );
  withAccess(shareTarget(fn.command('unshare').description('end a share of your function ID').argument('<id>'))).action(
    action(async (id: string, flags: GranteeFlags & { public?: boolean }) => {
      const query = new URLSearchParams(Object.fromEntries(Object.entries(target(flags)).map(([k, v]) => [k, String(v)]))).toString();
      printFunctionShares(flags, FunctionShares.parse(await gatewayJson(flags, 'DELETE', `/v3/functions/${id}/shares?${query}`)));
    }),
  );
  withAccess(fn.command('shares').description('who your function ID is shared with').argument('<id>').option('--json', 'print the answer as JSON')).action(
    action(async (id: string, flags: AccessFlags & { json?: boolean }) => printFunctionShares(flags, FunctionShares.parse(await gatewayJson(flags, 'GET', `/v3/functions/${id}/shares`)))),
  );
}
