// The address managers dial: the login node's IP or hostname, or the name of one of its network
// interfaces (`ib0`, `eth0`), resolved to that interface's first IPv4 address.

import { networkInterfaces } from 'node:os';
import { FerryError } from '../../protocol/errors';

export function resolveInterchangeAddress(value: string, interfaces = networkInterfaces()): string {
  const nic = interfaces[value];
  if (!nic) return value; // an IP or a hostname
  const v4 = nic.find((a) => a.family === 'IPv4') ?? nic[0];
  if (!v4) throw new FerryError('CONFIG_INVALID', `interchange.address: interface ${value} has no address`);
  return v4.address;
}
