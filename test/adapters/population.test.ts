import { afterEach, describe, expect, it, vi } from 'vitest';
import nock from 'nock';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPopulationAdapter } from '../../adapters/population/index.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';

const BASE = 'http://population.upstream.test';
const resilience = { timeoutMs: 200, retries: 1, retryBaseDelayMs: 1, retryMaxDelayMs: 5, breakerThreshold: 3, breakerHalfOpenAfterMs: 100, maxConcurrent: 8, maxQueued: 8 };
const adapter = (over: Partial<typeof resilience> = {}) => createPopulationAdapter({ baseUrl: BASE, resilience: { ...resilience, ...over } });

/** A recorded answer of the population database, in its own format. */
const recorded = {
  maKetQua: '00', thongDiep: 'Thành công', maTraCuu: 'TC0000000042',
  duLieu: {
    soDinhDanh: '001085123456', hoVaTen: 'Nguyễn Văn An', ngaySinh: '05/10/1985', gioiTinh: 'Nam', quocTich: 'Việt Nam', danToc: 'Kinh',
    queQuan: 'Quận Ba Đình, Hà Nội', noiThuongTru: { chiTiet: 'Số 105 Phố Hàng Bài', xaPhuong: 'Phường Ba Đình', quanHuyen: 'Quận Ba Đình', tinhThanhPho: 'Hà Nội' },
    noiOHienTai: { chiTiet: 'Số 105 Phố Hàng Bài', xaPhuong: 'Phường Ba Đình', quanHuyen: 'Quận Ba Đình', tinhThanhPho: 'Hà Nội' },
    tinhTrang: 'CON_SONG', ngayMat: null, cha: null, me: null, voChong: { soDinhDanh: '001188654321', hoVaTen: 'Trần Thị Bình' },
  },
};
const lookup = () => nock(BASE).post('/api/v1/cong-dan/tra-cuu', { soDinhDanh: '001085123456' });
const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e) => e.code as string);

afterEach(() => nock.cleanAll());

describe('population adapter', () => {
  it('maps the native answer to the standard record (ISO dates, English names, NFC)', async () => {
    lookup().reply(200, recorded);
    const trace: UpstreamCall[] = [];
    const r = await adapter().getIdentity('001085123456', trace);
    expect(r).toMatchObject({ personalId: '001085123456', fullName: 'Nguyễn Văn An', dateOfBirth: '1985-10-05', sex: 'male', lifeStatus: 'alive', spouse: { personalId: '001188654321', fullName: 'Trần Thị Bình' } });
    expect(r.source.reference).toBe('TC0000000042');
    expect(trace).toEqual([expect.objectContaining({ agency: 'population', outcome: 'ok', reference: 'TC0000000042' })]);
  });

  it('maps the database 404 to SUBJECT_NOT_FOUND without retrying', async () => {
    lookup().reply(404, { maLoi: 'CD404', moTa: 'Không tìm thấy công dân' });
    const trace: UpstreamCall[] = [];
    expect(await codeOf(adapter().getIdentity('001085123456', trace))).toBe('SUBJECT_NOT_FOUND');
    expect(trace[0]!.outcome).toBe('not_found');
  });

  it('times out: UPSTREAM_TIMEOUT', async () => {
    lookup().times(2).delay(500).reply(200, recorded);
    expect(await codeOf(adapter().getIdentity('001085123456'))).toBe('UPSTREAM_TIMEOUT');
  });

  it('times out an upstream that drips its answer: the deadline covers the whole exchange, not only silences', async () => {
    // Headers at once, then one byte every 40 ms: never silent for the 200 ms timeout, never done within it.
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const drip = setInterval(() => res.write(' '), 40);
      res.on('close', () => clearInterval(drip));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // A real socket: nock's interception times a request its own way, and the deadline is the transport's.
    nock.restore();
    try {
      const { port } = server.address() as AddressInfo;
      const dripping = createPopulationAdapter({ baseUrl: `http://127.0.0.1:${port}`, resilience: { ...resilience, retries: 0 } });
      const trace: UpstreamCall[] = [];
      const started = performance.now();
      expect(await codeOf(dripping.getIdentity('001085123456', trace))).toBe('UPSTREAM_TIMEOUT');
      expect(performance.now() - started).toBeLessThan(1500);
      expect(trace).toMatchObject([{ outcome: 'error', errorCode: 'UPSTREAM_TIMEOUT' }]);
    } finally {
      nock.activate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('retries a read once after a 5xx and succeeds', async () => {
    lookup().reply(503, { maLoi: 'HT503', moTa: 'bảo trì' });
    lookup().reply(200, recorded);
    expect((await adapter().getIdentity('001085123456')).fullName).toBe('Nguyễn Văn An');
  });

  it('gives UPSTREAM_UNAVAILABLE when 5xx persists', async () => {
    lookup().times(2).reply(500, 'Internal Server Error');
    expect(await codeOf(adapter().getIdentity('001085123456'))).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('opens the breaker after consecutive failures, then half-opens and recovers', async () => {
    // The breaker (cockatiel) times its pause with Date.now(): only Date is faked, so sockets and
    // the per-attempt timeout run on real timers while the pause is stepped through exactly.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const a = adapter({ retries: 0, breakerThreshold: 2, breakerHalfOpenAfterMs: 50 });
      lookup().times(2).reply(503, {});
      expect(await codeOf(a.getIdentity('001085123456'))).toBe('UPSTREAM_UNAVAILABLE');
      expect(await codeOf(a.getIdentity('001085123456'))).toBe('UPSTREAM_UNAVAILABLE');
      expect(a.breakerState()).toBe('open');
      const untouched = lookup().reply(200, recorded);
      expect(await codeOf(a.getIdentity('001085123456'))).toBe('UPSTREAM_UNAVAILABLE');
      expect(untouched.isDone()).toBe(false); // the open breaker did not call the upstream
      vi.advanceTimersByTime(49);
      expect(await codeOf(a.getIdentity('001085123456'))).toBe('UPSTREAM_UNAVAILABLE');
      expect(untouched.isDone()).toBe(false); // still open 1 ms before the pause ends
      vi.advanceTimersByTime(1);
      expect(await codeOf(a.getIdentity('001085123456'))).toBe('OK');
      expect(untouched.isDone()).toBe(true);
      expect(a.breakerState()).toBe('closed');
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a garbage body: UPSTREAM_BAD_RESPONSE', async () => {
    lookup().reply(200, '<html>oops</html>', { 'Content-Type': 'text/html' });
    expect(await codeOf(adapter().getIdentity('001085123456'))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('refuses an answer whose id disagrees with sex or birth year: UPSTREAM_BAD_RESPONSE', async () => {
    lookup().reply(200, { ...recorded, duLieu: { ...recorded.duLieu, gioiTinh: 'Nữ' } });
    expect(await codeOf(adapter().getIdentity('001085123456'))).toBe('UPSTREAM_BAD_RESPONSE');
    lookup().reply(200, { ...recorded, duLieu: { ...recorded.duLieu, ngaySinh: '31/02/1985' } });
    expect(await codeOf(adapter().getIdentity('001085123456'))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('never follows a redirect', async () => {
    lookup().reply(302, '', { Location: 'http://evil.test/steal' });
    const evil = nock('http://evil.test').post('/steal').reply(200, recorded);
    expect(await codeOf(adapter().getIdentity('001085123456'))).toBe('UPSTREAM_BAD_RESPONSE');
    expect(evil.isDone()).toBe(false);
  });

  it('fails at creation on invalid options', () => {
    expect(() => createPopulationAdapter({ baseUrl: 'not a url', resilience })).toThrow(TypeError);
  });
});

describe('population adapter bulkhead', () => {
  it('refuses calls beyond its concurrency and queue limits: UPSTREAM_UNAVAILABLE, without calling', async () => {
    const a = adapter({ maxConcurrent: 1, maxQueued: 1, timeoutMs: 1000, retries: 0 });
    lookup().times(2).delay(100).reply(200, recorded);
    const extra = lookup().reply(200, recorded);
    const results = await Promise.all([0, 1, 2].map(() => codeOf(a.getIdentity('001085123456'))));
    expect(results.sort()).toEqual(['OK', 'OK', 'UPSTREAM_UNAVAILABLE']);
    expect(extra.isDone()).toBe(false);
  });
});

describe('population adapter response limit', () => {
  it('reads an answer compressed although not asked to (gzip, deflate, br)', async () => {
    const encoders = { gzip: gzipSync, deflate: deflateSync, br: brotliCompressSync } as const;
    for (const [coding, encode] of Object.entries(encoders)) {
      lookup().reply(200, encode(JSON.stringify(recorded)), { 'Content-Type': 'application/json', 'Content-Encoding': coding });
      expect((await adapter().getIdentity('001085123456')).fullName).toBe('Nguyễn Văn An');
    }
  });

  it('refuses a compressed answer that expands beyond maxResponseBytes, or an unknown coding: UPSTREAM_BAD_RESPONSE', async () => {
    const bomb = gzipSync(Buffer.alloc(1_000_000, 0x20));
    expect(bomb.length).toBeLessThan(4096);
    lookup().reply(200, bomb, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    const a = createPopulationAdapter({ baseUrl: BASE, resilience: { ...resilience, retries: 0, maxResponseBytes: 4096 } });
    expect(await codeOf(a.getIdentity('001085123456'))).toBe('UPSTREAM_BAD_RESPONSE');
    lookup().reply(200, JSON.stringify(recorded), { 'Content-Type': 'application/json', 'Content-Encoding': 'x-unknown' });
    expect(await codeOf(adapter({ retries: 0 }).getIdentity('001085123456'))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('refuses an answer larger than maxResponseBytes: UPSTREAM_BAD_RESPONSE', async () => {
    const a = createPopulationAdapter({ baseUrl: BASE, resilience: { ...resilience, retries: 0, maxResponseBytes: 4096 } });
    lookup().reply(200, { ...recorded, padding: 'x'.repeat(10_000) });
    expect(await codeOf(a.getIdentity('001085123456'))).toBe('UPSTREAM_BAD_RESPONSE');
  });
});
