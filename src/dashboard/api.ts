// The gateway's REST API as the page calls it: same origin, the token in `Authorization` (never in
// a URL), errors rebuilt from Ferry's `{code, message}` bodies.

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

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
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      throw new ApiError(res.status, 'BAD_ANSWER', `the gateway answered ${res.status} with a body that is not JSON`);
    }
    if (!res.ok) {
      const err = body as { code?: unknown; message?: unknown } | null;
      if (res.status === 401) onUnauthorized();
      throw new ApiError(res.status, typeof err?.code === 'string' ? err.code : 'HTTP_' + res.status, typeof err?.message === 'string' ? err.message : res.statusText);
    }
    return body as T;
  };
  return {
    token,
    get: async (path, signal) => json(await call(path, signal ? { signal } : {})),
    del: async (path) => json(await call(path, { method: 'DELETE' })),
    fetch: call,
  };
}
