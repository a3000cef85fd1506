import { describe, expect, it } from 'vitest';
import { resolveInterchangeAddress } from './interchange-address';

describe('resolveInterchangeAddress', () => {
  const nics = {
    lo: [{ address: '127.0.0.1', family: 'IPv4' }],
    ib0: [{ address: 'fe80::1', family: 'IPv6' }, { address: '10.1.2.3', family: 'IPv4' }],
  } as unknown as ReturnType<typeof import('node:os').networkInterfaces>;
  it('resolves an interface name to its IPv4 address and passes addresses and hostnames through', () => {
    expect(resolveInterchangeAddress('ib0', nics)).toBe('10.1.2.3');
    expect(resolveInterchangeAddress('lo', nics)).toBe('127.0.0.1');
    expect(resolveInterchangeAddress('192.168.0.5', nics)).toBe('192.168.0.5');
    expect(resolveInterchangeAddress('login1.cluster.org', nics)).toBe('login1.cluster.org');
  });
});
