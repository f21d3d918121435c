import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { world } from '../adapters/world/index.ts';
import { startGateway, testConfig } from './support/fixtures.ts';
import { createLogger } from '../gateway/logger.ts';
import { eventually } from './support/eventually.ts';

describe('logs', () => {
  it('are pino JSON lines with the request id, and never hold tokens, personal ids or names', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    const gw = await startGateway(await testConfig((raw) => { raw.logLevel = 'debug'; }), { logDestination: sink });
    const citizen = world().citizens[1]!;
    try {
      const body = JSON.stringify({ personalId: citizen.personalId });
      const token = await gw.assertion(body);
      const consent = await gw.consent(citizen.personalId, ['core']);
      const ok = await gw.call('population.identity', null, { raw: body, token, consent });
      expect(ok.status).toBe(200);
      const refused = await gw.call('population.identity', null, { raw: body, token, consent });
      expect(refused.status).toBe(401);
      const denied = await gw.call('population.identity', { personalId: citizen.personalId }, { client: 'auditor', purpose: 'AUDIT_REVIEW' });
      expect(denied.status).toBe(403);
      // Each request's closing line ('released' or 'request refused') is the last it logs: wait for all three.
      const closing = (res: Response) => lines.some((l) => {
        const { requestId, msg } = JSON.parse(l) as { requestId?: string; msg?: string };
        return requestId === res.headers.get('x-request-id') && (msg === 'released' || msg === 'request refused');
      });
      await eventually(() => expect([ok, refused, denied].map(closing)).toEqual([true, true, true]));
      const log = lines.join('\n');
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
      expect(lines.some((l) => JSON.parse(l).requestId === refused.headers.get('x-request-id'))).toBe(true);
      for (const secret of [token, token.split('.')[1]!, token.split('.')[2]!, consent, consent.split('.')[2]!, citizen.personalId, citizen.fullName, citizen.fullName.normalize('NFD')]) {
        expect(log).not.toContain(secret);
      }
    } finally {
      await gw.close();
    }
  });

  it('censor a secret a call site should never have passed, at the top or one level down, without touching the object', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(chunk.toString()); done(); } });
    const logger = createLogger('info', sink);
    const logged = { requestId: 'r-1', personalId: '001088000001', headers: { cookie: 'c' }, upstream: { agency: 'population', fullName: 'Nguyễn Văn An', authorization: 'Bearer t' } };
    const before = structuredClone(logged);
    logger.info(logged, 'checked');
    const line = JSON.parse(lines.join(''));
    expect(line).toMatchObject({ requestId: 'r-1', personalId: '[redacted]', headers: '[redacted]', upstream: { agency: 'population', fullName: '[redacted]', authorization: '[redacted]' } });
    expect(lines.join('')).not.toContain('001088000001');
    expect(lines.join('')).not.toContain('Bearer t');
    expect(logged).toEqual(before);
  });
});
