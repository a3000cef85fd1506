// The gateway's REST API as the page calls it: same origin, the token in `Authorization` (never in
// a URL), errors rebuilt from Ferry's `{code, message}` bodies by errorFromBody (a FerryApiError).

import { errorFromBody, FerryApiError } from '../protocol/error-body';

export interface Api {
  /** For the event stream, which sends it itself (in a header, as every call). */
  readonly token: string;
  get<T>(path: string, signal?: AbortSignal): Promise<T>;
  del<T>(path: string): Promise<T>;
  /** A raw request with the token (the event stream reads its body itself). */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** `onUnauthorized`: the token was refused (expired, revoked): the page asks for a new one. */
export function createApi(token: string, onUnauthorized: () => void): Api {
  const call = async (path: string, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    return fetch(path, { ...init, headers, cache: 'no-store' });
  };
  const json = async <T>(res: Response): Promise<T> => {
    const text = await res.text();
    if (!res.ok) {
      if (res.status === 401) onUnauthorized();
      throw errorFromBody(res.status, text);
    }
    try {
      return (text ? JSON.parse(text) : null) as T;
    } catch {
      throw new FerryApiError(res.status, 'BAD_ANSWER', `the gateway answered ${res.status} with a body that is not JSON`);
    }
  };
  return {
    token,
    get: async (path, signal) => json(await call(path, signal ? { signal } : {})),
    del: async (path) => json(await call(path, { method: 'DELETE' })),
    fetch: call,
  };
}
