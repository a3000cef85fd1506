import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadEndpointConfig, parseEndpointConfig } from './endpoint-config';

describe('endpoint config', () => {
  it('fills defaults and freezes the result', () => {
    const cfg = parseEndpointConfig({});
    expect(cfg.provider).toMatchObject({ type: 'local', max_workers_per_node: 2 });
    expect(cfg.task_timeout_s).toBe(60);
    expect(cfg.allow_wasm).toBe(false);
    expect(Object.isFrozen(cfg.provider)).toBe(true);
  });

  it('names the field in its errors', () => {
    expect(() => parseEndpointConfig({ provider: { type: 'local', min_blocks: 3, max_blocks: 2 } })).toThrow(/provider\.max_blocks: must be ≥ min_blocks \(3\)/);
    expect(() => parseEndpointConfig({ task_memory_mb: 'lots' })).toThrow(/task_memory_mb: /);
    expect(() => parseEndpointConfig({ provider: { type: 'local', max_workers_per_node: 0 } })).toThrow(/provider\.max_workers_per_node: /);
    expect(() => parseEndpointConfig({ tsak_timeout_s: 5 })).toThrow(/tsak_timeout_s/);
  });

  it('reports unreadable files and bad YAML with the path and a stable code', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'provider: [unclosed');
    expect(() => loadEndpointConfig(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(bad) }));
    expect(() => loadEndpointConfig(join(dir, 'missing.yaml'))).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('ENOENT') }));
  });

  it('accepts the committed example config', () => {
    const cfg = loadEndpointConfig(join(import.meta.dirname, '..', '..', '..', 'endpoint-config', 'local.yaml'));
    expect(cfg.provider.type).toBe('local');
  });
});
