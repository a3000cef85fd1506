// The runtime zones are enforced by the compiler: gateway code that reaches for a Node module must
// fail the typecheck. Compiles a probe file under the gateway's own tsconfig settings.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(root, 'test', '.zone-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function typecheckAs(zone: 'gateway' | 'protocol', source: string) {
  writeFileSync(join(dir, 'probe.ts'), source);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    extends: `../../src/${zone}/tsconfig.json`,
    compilerOptions: { composite: false, noEmit: true, emitDeclarationOnly: false, declaration: false, rootDir: '.' },
    include: ['probe.ts'],
    references: [],
  }));
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('zones', () => {
  it('compiles Workers code in the gateway zone', () => {
    const r = typecheckAs('gateway', `export default { fetch: (req: Request) => new Response(req.url) } satisfies ExportedHandler;\n`);
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses a Node import in the gateway zone', () => {
    const r = typecheckAs('gateway', `import { readFileSync } from 'node:fs';\nexport const x = readFileSync('/etc/hostname');\n`);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/node:fs/);
  });

  it('refuses Node globals in runtime-free code', () => {
    const r = typecheckAs('protocol', `export const home = process.env.HOME;\n`);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/process/);
  });
});

// One test rule (README, "Tests and benchmark"): unit tests beside their code, end-to-end tests in
// test/e2e, helpers and fakes in test/; every test file in a project `npx tsc -b` checks. A test
// file anywhere else would run under neither vitest config, or unchecked.
describe('test layout', () => {
  const testFiles = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !['node_modules', 'dist'].includes(d.name) && !d.name.startsWith('.'))
    .flatMap((d) => readdirSync(join(root, d.name), { recursive: true, encoding: 'utf8' }).map((f) => `${d.name}/${f}`))
    .filter((f) => f.endsWith('.test.ts') && !/\/(node_modules|\.[^/]+)\//.test(f))
    .sort();

  it('keeps unit tests beside their code and end-to-end tests in test/e2e', () => {
    expect(testFiles.length).toBeGreaterThan(50);
    expect(testFiles.filter((f) => !/^(src|scripts|test\/e2e)\//.test(f))).toEqual([]);
  });

  it('typechecks every test file', () => {
    const tsc = join(root, 'node_modules', '.bin', 'tsc');
    const listed = new Set<string>();
    for (const project of ['test/tsconfig.json', 'test/tsconfig.gateway.json']) {
      const r = spawnSync(tsc, ['-p', join(root, project), '--listFilesOnly'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      for (const line of r.stdout.split('\n')) if (line.endsWith('.test.ts')) listed.add(relative(root, line));
    }
    expect(testFiles.filter((f) => !listed.has(f))).toEqual([]);
  });
});
