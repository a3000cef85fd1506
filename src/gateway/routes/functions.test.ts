// Function registration: content-derived ids, ownership, validation.

import { env } from 'cloudflare:workers';
import { describe, expect, it, vi } from 'vitest';
import { LIMITS } from '../../protocol/api';
import { ADD, call, newUser, registerFunction } from '../../../test/helpers/gateway';

describe('POST /v3/functions', () => {
  it('gives the same code from the same owner the same id, and another owner another id', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const first = await registerFunction(alice);
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await registerFunction(alice)).toBe(first);
    expect(await registerFunction(bob)).not.toBe(first);
    expect(await registerFunction(alice, '(x) => x * 2', 'double')).not.toBe(first);
  });

  it('caches the code in KV under fn:<uuid>', async () => {
    const alice = await newUser();
    const id = await registerFunction(alice);
    expect(await env.CACHE.get(`fn:${id}`, 'json')).toEqual({ owner: alice.sub, runtime: 'js', code: ADD, name: 'add' });
  });

  it('accepts a shell command template', async () => {
    const alice = await newUser();
    const res = await alice.call('post', '/v3/functions', { function_name: 'ls', function_code: 'ls {dir}', meta: { runtime: 'shell' } });
    expect(res.status).toBe(200);
    const doc = await alice.call('get', `/v2/functions/${res.body.function_uuid}`);
    expect(doc.body.meta).toEqual({ runtime: 'shell' });
  });

  it('stores Python source unparsed, its entry point part of its id, and refuses a name that is not an identifier', async () => {
    const alice = await newUser();
    const code = 'import math\n\ndef area(r):\n    return math.pi * r * r\n\ndef perimeter(r):\n    return 2 * math.pi * r\n';
    const register = (name: string, source = code) => alice.call('post', '/v3/functions', { function_name: name, function_code: source, meta: { runtime: 'python' } });
    const area = await register('area');
    expect(area.status).toBe(200);
    expect((await register('area')).body.function_uuid).toBe(area.body.function_uuid);
    // One source, two entry points: two functions.
    expect((await register('perimeter')).body.function_uuid).not.toBe(area.body.function_uuid);
    const doc = await alice.call('get', `/v2/functions/${area.body.function_uuid}`);
    expect(doc.body).toMatchObject({ function_name: 'area', function_code: code, meta: { runtime: 'python' } });
    // The gateway cannot parse Python: source that does not parse is stored, the endpoint refuses it.
    expect((await register('f', 'def f(:\n')).status).toBe(200);
    for (const name of ['2fast', 'my-func', 'a b']) {
      const res = await register(name);
      expect(res.status, name).toBe(400);
      expect(res.body, name).toMatchObject({ code: 'INVALID_FUNCTION_CODE', message: expect.stringContaining('not a Python identifier') });
    }
  });

  it('refuses a shell template with a placeholder inside quotes it wrote, naming the placeholder', async () => {
    const alice = await newUser();
    const cases: Array<[string, string]> = [
      ["grep -c '{pattern}' /dev/null", "{pattern} at offset 9 of the command template stands inside single quotes"],
      ['echo "{msg}"', '{msg} at offset 6 of the command template stands inside double quotes'],
      ['echo `cat {f}`', '{f} at offset 10 of the command template stands inside backquotes'],
      ["awk '{print $1}' {f}", "'{print $1}' at offset 5 of the command template is not a placeholder"],
    ];
    for (const [code, message] of cases) {
      const res = await alice.call('post', '/v3/functions', { function_name: 'quoted', function_code: code, meta: { runtime: 'shell' } });
      expect(res.status, code).toBe(400);
      expect(res.body, code).toMatchObject({ code: 'INVALID_FUNCTION_CODE', message: expect.stringContaining(message) });
    }
  });

  it('refuses code that is not one function expression', async () => {
    const alice = await newUser();
    for (const code of ['1 + 1', 'function a() {}; function b() {}', 'function (', '(x) => x); evil(']) {
      const res = await alice.call('post', '/v3/functions', { function_name: 'bad', function_code: code });
      expect(res.status, code).toBe(400);
      expect(res.body.code, code).toBe('INVALID_FUNCTION_CODE');
    }
    const blank = await alice.call('post', '/v3/functions', { function_name: 'blank', function_code: '   ', meta: { runtime: 'shell' } });
    expect(blank.body.code).toBe('INVALID_FUNCTION_CODE');
  });

  it('refuses malformed JSON and schema violations, naming the field', async () => {
    const alice = await newUser();
    const malformed = await call('post', '/v3/functions', { token: alice.token, rawBody: '{"function_name": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('INVALID_JSON');
    const missing = await alice.call('post', '/v3/functions', { function_name: 'x' });
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe('VALIDATION_ERROR');
    expect(missing.body.message).toMatch(/^function_code: /);
    const runtime = await alice.call('post', '/v3/functions', { function_name: 'x', function_code: ADD, meta: { runtime: 'ruby' } });
    expect(runtime.body.message).toMatch(/^meta\.runtime: /);
    const extra = await alice.call('post', '/v3/functions', { function_name: 'x', function_code: ADD, surprise: 1 });
    expect(extra.body.code).toBe('VALIDATION_ERROR');
    expect(extra.body.message).toBe('surprise: unrecognized key');
  });
});

describe('deep bodies', () => {
  it('answer 400 VALIDATION_ERROR naming the depth limit, never 500, and log no error', async () => {
    const alice = await newUser();
    const errors = vi.spyOn(console, 'error');
    try {
      const rawBody = `{"function_name": "deep", "function_code": ${JSON.stringify(ADD)}, "meta": ${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}}`;
      const res = await call('post', '/v3/functions', { token: alice.token, rawBody });
      expect([res.status, res.body.code], res.text).toEqual([400, 'VALIDATION_ERROR']);
      expect(res.body.message).toContain(`${LIMITS.maxJsonDepth} levels`);
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
    }
  });
});

describe('GET and DELETE /v2/functions/{function_uuid}', () => {
  it('shows the owner the function and nobody else', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const id = await registerFunction(alice);
    const doc = await alice.call('get', `/v2/functions/${id}`);
    expect(doc.status).toBe(200);
    expect(doc.body).toMatchObject({ function_uuid: id, function_name: 'add', function_code: ADD, description: null, meta: { runtime: 'js' } });
    expect(Date.parse(doc.body.created_at)).not.toBeNaN();
    const other = await bob.call('get', `/v2/functions/${id}`);
    expect(other.status).toBe(404);
    expect(other.body.code).toBe('NOT_FOUND');
    expect(other.text).not.toContain(ADD);
    expect((await bob.call('delete', `/v2/functions/${id}`)).status).toBe(404);
    expect((await alice.call('get', `/v2/functions/${id}`)).status).toBe(200);
  });

  it('deletes: 200 {result: 302}, then 404, and the KV copy is gone', async () => {
    const alice = await newUser();
    const id = await registerFunction(alice);
    const res = await alice.call('delete', `/v2/functions/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ result: 302 });
    expect((await alice.call('get', `/v2/functions/${id}`)).status).toBe(404);
    expect((await alice.call('delete', `/v2/functions/${id}`)).status).toBe(404);
    expect(await env.CACHE.get(`fn:${id}`)).toBeNull();
  });

  it('answers 404 for an id that is not a UUID', async () => {
    const alice = await newUser();
    const res = await alice.call('get', '/v2/functions/not-a-uuid');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
  });
});
