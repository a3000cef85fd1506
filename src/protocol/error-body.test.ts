// errorFromBody(): how every client reads a Ferry error answer back, and what it makes of a body
// that is not one (a proxy's page, nothing, too large, too deep).

import { describe, expect, it } from 'vitest';
import { errorFromBody, FerryApiError, MAX_ERROR_BODY_CHARS } from './error-body';

describe('errorFromBody', () => {
  it('reads a Ferry error body: code, message, details, and the answer\'s status', () => {
    const err = errorFromBody(413, JSON.stringify({ code: 'TOO_MANY_TASKS', message: 'at most 100 tasks', details: { max_tasks: 100 } }));
    expect(err).toBeInstanceOf(FerryApiError);
    expect(err).toMatchObject({ name: 'FerryApiError', status: 413, code: 'TOO_MANY_TASKS', details: { max_tasks: 100 }, ferryBody: true });
    expect(err.message).toBe('TOO_MANY_TASKS: at most 100 tasks');
    expect(err.detail).toBe('at most 100 tasks');
    expect(err.knownCode).toBe('TOO_MANY_TASKS');
  });

  it('keeps a code this build does not know, without calling it known', () => {
    const err = errorFromBody(409, JSON.stringify({ code: 'SOMETHING_NEWER', message: 'from a newer gateway' }));
    expect(err).toMatchObject({ code: 'SOMETHING_NEWER', ferryBody: true });
    expect(err.knownCode).toBeUndefined();
  });

  it('gives HTTP_<status> and the text for anything that is not a Ferry error body', () => {
    const page = '<html><body>502 Bad Gateway</body></html>';
    expect(errorFromBody(502, page)).toMatchObject({ status: 502, code: 'HTTP_502', message: `HTTP_502: ${page}`, ferryBody: false });
    expect(errorFromBody(503, '')).toMatchObject({ code: 'HTTP_503', message: 'HTTP_503: ', ferryBody: false });
    for (const text of ['[1, 2]', '7', 'null', '{"code": 5, "message": "x"}', '{"message": "no code"}', '{"code": ""}', '{"code": "X"']) {
      expect(errorFromBody(500, text), text).toMatchObject({ code: 'HTTP_500', ferryBody: false });
    }
  });

  it('parses no body over MAX_ERROR_BODY_CHARS and keeps 1000 characters of any text', () => {
    const big = JSON.stringify({ code: 'NOT_FOUND', message: 'x'.repeat(MAX_ERROR_BODY_CHARS) });
    const err = errorFromBody(404, big);
    expect(err).toMatchObject({ code: 'HTTP_404', ferryBody: false });
    expect(err.detail).toBe(big.slice(0, 1000));
    const long = errorFromBody(400, JSON.stringify({ code: 'VALIDATION_ERROR', message: 'y'.repeat(5000) }));
    expect(long.detail).toBe('y'.repeat(1000));
  });

  it('does not decode a body that nests deeper than its bound (no stack overflow, no details)', () => {
    const deep = `{"code":"INTERNAL","message":"m","details":${'['.repeat(MAX_ERROR_BODY_CHARS / 2 - 100)}${']'.repeat(MAX_ERROR_BODY_CHARS / 2 - 100)}}`;
    expect(errorFromBody(500, deep)).toMatchObject({ code: 'HTTP_500', ferryBody: false });
    const shallow = errorFromBody(500, JSON.stringify({ code: 'INTERNAL', message: 'm', details: [[[1]]] }));
    expect(shallow).toMatchObject({ code: 'INTERNAL', details: [[[1]]] });
  });
});
