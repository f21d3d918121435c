import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { catalogue, problemResponse, toProblem, GatewayError, type ErrorCode } from '../gateway/errors.ts';
import { startGateway, type TestGateway } from './support/fixtures.ts';
import { world } from '../adapters/world/index.ts';

let gw: TestGateway;
beforeAll(async () => { gw = await startGateway(); });
afterAll(async () => { await gw.close(); });

describe('the error catalogue', () => {
  it('gives every code a 4xx/5xx status, itself as the code of its errors and problems, and titles in both languages', () => {
    for (const [key, entry] of Object.entries(catalogue) as [ErrorCode, (typeof catalogue)[ErrorCode]][]) {
      expect(key, 'codes are stable SCREAMING_SNAKE names').toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      expect(Number.isInteger(entry.status) && entry.status >= 400 && entry.status <= 599, `${key}: status ${entry.status}`).toBe(true);
      const err = new GatewayError(key, 'some detail');
      expect({ code: err.code, status: err.status, expose: err.expose }).toEqual({ code: key, status: entry.status, expose: entry.status < 500 });
      const problem = toProblem(err, 'rid');
      expect(problem).toMatchObject({ code: key, status: entry.status, title: entry.title, requestId: 'rid' });
      expect(problem.type).toMatch(/^urn:gateway:problem:[a-z0-9]+(-[a-z0-9]+)*$/);
      expect('detail' in problem, `${key}: the detail reaches the client only below 500`).toBe(entry.status < 500);
      expect(toProblem(err, 'rid', 'vi')).toMatchObject({ code: key, status: entry.status, title: entry.vi });
      const sent = problemResponse(err, 'rid', 'vi');
      expect(sent.status).toBe(entry.status);
      expect(JSON.parse(sent.body.toString())).toMatchObject({ code: key, status: entry.status, title: entry.vi });
      expect(entry.title.trim(), `${key}: English title`).not.toBe('');
      expect(entry.vi.trim(), `${key}: Vietnamese title`).not.toBe('');
      expect(entry.vi, `${key}: the Vietnamese title is a translation`).not.toBe(entry.title);
    }
  });

  it('tells codes apart: no two share a problem type or a title (a copied entry shows as a repeat)', () => {
    const codes = Object.keys(catalogue) as ErrorCode[];
    const repeats = (values: string[]) => values.filter((v, i) => values.indexOf(v) !== i);
    expect(repeats(codes.map((c) => toProblem(new GatewayError(c), 'x').type))).toEqual([]);
    expect(repeats(codes.map((c) => catalogue[c].title))).toEqual([]);
    expect(repeats(codes.map((c) => catalogue[c].vi))).toEqual([]);
  });

  it('documents every code with its status in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const [code, { status }] of Object.entries(catalogue)) expect(readme).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`));
  });

  it('never exposes the detail of a 5xx', () => {
    const p = toProblem(new GatewayError('UPSTREAM_UNAVAILABLE', 'population: ECONNREFUSED 10.0.0.7:8443'), 'rid');
    expect(p).not.toHaveProperty('detail');
    expect(toProblem(new Error('secret stack'), 'rid')).toMatchObject({ status: 500, code: 'INTERNAL' });
  });
});

describe('problem responses for bad input', () => {
  const post = (headers: Record<string, string>, body: string) =>
    fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers, body });

  it('malformed JSON → 400 REQUEST_INVALID as application/problem+json with the request id', async () => {
    const token = await gw.assertion('{"personalId":');
    const res = await post({ 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, '{"personalId":');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const p = await res.json();
    expect(p).toMatchObject({ status: 400, code: 'REQUEST_INVALID', requestId: res.headers.get('x-request-id') });
    expect(typeof p.type).toBe('string');
    expect(typeof p.title).toBe('string');
  });

  it('malformed JSON without a token is still 400', async () => {
    const res = await post({ 'Content-Type': 'application/json' }, '{nope');
    expect((await res.json()).code).toBe('REQUEST_INVALID');
  });

  it('wrong content type → 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await post({ 'Content-Type': 'text/plain' }, 'personalId=001085123456');
    expect(res.status).toBe(415);
    expect((await res.json()).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const form = await post({ 'Content-Type': 'application/x-www-form-urlencoded' }, 'a=b');
    expect((await form.json()).code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('oversized body → 413 PAYLOAD_TOO_LARGE', async () => {
    const big = JSON.stringify({ personalId: 'x'.repeat(gw.config.limits.maxBodyBytes + 10) });
    const res = await post({ 'Content-Type': 'application/json' }, big);
    expect(res.status).toBe(413);
    expect((await res.json()).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('a body sent with a content coding → 415 UNSUPPORTED_MEDIA_TYPE (body_sha256 covers the bytes as sent)', async () => {
    const body = gzipSync(JSON.stringify({ personalId: '001085123456' }));
    for (const coding of ['gzip', 'deflate', 'br']) {
      const res = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': coding }, body });
      expect(res.status).toBe(415);
      expect((await res.json()).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('a body streamed past the limit without Content-Length → 413 PAYLOAD_TOO_LARGE, answered after the body', async () => {
    const chunk = Buffer.alloc(4096, 0x20);
    let sent = 0;
    const stream = new ReadableStream({
      pull(controller) {
        if (sent > gw.config.limits.maxBodyBytes + 3 * chunk.length) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect((await res.json()).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('finds a data service as express routing would: any letter case, an optional trailing slash, a query ignored', async () => {
    const body = JSON.stringify({ personalId: world().citizens[0]!.personalId });
    for (const path of ['/SERVICES/population.identity/v1', '/services/population.identity/v1/', '/services/population%2Eidentity/v1?x=1']) {
      const token = await gw.assertion(body);
      const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body });
      expect(res.status).toBe(200);
    }
    const bad = await fetch(`${gw.url}/services/population%E0%A4%A/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe('REQUEST_INVALID');
  });

  it('unknown members and wrong types → 400 REQUEST_INVALID', async () => {
    for (const body of [{ personalId: '001085123456', extra: 1 }, { personalId: ['001085123456'] }, {}, []]) {
      const res = await gw.call('population.identity', body);
      expect((await res.json()).code).toBe('REQUEST_INVALID');
    }
  });

  it('wrong method and unknown paths are problems too', async () => {
    const get = await fetch(`${gw.url}/services/population.identity/v1/extra`);
    expect((await get.json()).code).toBe('NOT_FOUND');
    const put = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect((await put.json()).code).toBe('METHOD_NOT_ALLOWED');
  });

  it('gives Vietnamese titles with Accept-Language: vi', async () => {
    const res = await fetch(`${gw.url}/services/population.identity/v1`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'Accept-Language': 'vi-VN,vi;q=0.9' }, body: '{}' });
    const p = await res.json();
    expect(p.code).toBe('AUTH_MISSING');
    expect(p.title).toBe(catalogue.AUTH_MISSING.vi);
  });

  it('maps an upstream outage to a 5xx that carries no upstream internals', async () => {
    const cfg = await (await import('./support/fixtures.ts')).testConfig((raw) => { raw.upstreams.population = { url: 'http://127.0.0.1:9', resilience: { timeoutMs: 300, retries: 0 } }; });
    const down = await startGateway(cfg);
    try {
      const res = await down.call('population.identity', { personalId: '001085123456' });
      expect(res.status).toBe(503);
      const text = await res.text();
      expect(JSON.parse(text).code).toBe('UPSTREAM_UNAVAILABLE');
      expect(text).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|:9/);
    } finally {
      await down.close();
    }
  });
});
