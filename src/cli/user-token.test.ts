// `ferry token`: the user tokens it mints always expire, within the gateway's default cap.

import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { mintUserToken } from './tokens';
import { DEFAULT_MAX_USER_TOKEN_TTL_S } from '../protocol/tokens';

describe('mintUserToken', () => {
  it('mints 30 days by default, exactly the default cap', async () => {
    const claims = decodeJwt(await mintUserToken({ secret: 's', sub: 'dev-user' }));
    expect(claims.exp! - claims.iat!).toBe(DEFAULT_MAX_USER_TOKEN_TTL_S);
    expect(DEFAULT_MAX_USER_TOKEN_TTL_S).toBe(30 * 24 * 3600);
  });

  it('refuses a lifetime the gateway would refuse, naming the cap', async () => {
    await expect(mintUserToken({ secret: 's', sub: 'dev-user', expiresIn: '31d' })).rejects.toThrow(/MAX_USER_TOKEN_TTL_S/);
    await expect(mintUserToken({ secret: 's', sub: 'dev-user', expiresIn: DEFAULT_MAX_USER_TOKEN_TTL_S + 1 })).rejects.toThrow(/30d/);
  });
});
