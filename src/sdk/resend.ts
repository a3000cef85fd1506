// Sending a request once more when its kept-alive connection closed before any answer came.
//
// An HTTP/1.1 server closes a connection that stayed idle past its timeout (workerd: 5 s, and it
// strips any Keep-Alive header that would tell clients so). A client that picks that connection
// for its next request just as the server closes it, or that was too busy to read the close (a
// blocked event loop, a loaded machine), gets "other side closed" or ECONNRESET with no answer.
// The request may then be sent again when doing so cannot store anything twice:
// the rule of Go's net/http transport. An idempotent method (GET, HEAD, PUT, DELETE, OPTIONS), a
// POST the caller marks as a read or as harmless to repeat, or any request that carries an
// `Idempotency-Key` (the gateway answers a key it has seen with the first request's answer).

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** A fetch that failed because the connection closed before the answer (undici: "other side closed", or a reset). */
export function closedBeforeAnswer(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return err instanceof TypeError && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET');
}

/** Whether sending `init` twice stores nothing twice, and its body can be sent again. */
export function mayResend(method: string, init: { headers?: Record<string, string>; body?: unknown }, repeatable = false): boolean {
  if (init.body instanceof ReadableStream) return false;
  if (repeatable || IDEMPOTENT_METHODS.has(method.toUpperCase())) return true;
  return Object.keys(init.headers ?? {}).some((name) => name.toLowerCase() === 'idempotency-key');
}

/** Sends after a closed connection: another kept-alive connection may be stale too, so a few times. */
const MAX_RESENDS = 2;

/**
 * `fetchImpl(url, init)`, sent again (at most MAX_RESENDS times) when the connection closed before
 * any answer and `mayResend` allows it. `onResend` hears of each resend.
 */
export async function fetchResending(
  fetchImpl: typeof fetch,
  url: string,
  init: RequestInit & { method: string; headers?: Record<string, string> },
  options: { repeatable?: boolean; onResend?: (resend: number) => void } = {},
): Promise<Response> {
  for (let resend = 0; ; resend++) {
    try {
      return await fetchImpl(url, init);
    } catch (err) {
      if (resend >= MAX_RESENDS || !closedBeforeAnswer(err) || !mayResend(init.method, init, options.repeatable)) throw err;
      options.onResend?.(resend + 1);
    }
  }
}
