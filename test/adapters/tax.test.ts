import { afterEach, describe, expect, it, vi } from 'vitest';
import nock from 'nock';
import { createTaxAdapter, type TransferSheet } from '../../adapters/tax/index.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';

const BASE = 'http://tax.upstream.test';
const resilience = { timeoutMs: 200, retries: 1, retryBaseDelayMs: 1, retryMaxDelayMs: 5, breakerThreshold: 5, breakerHalfOpenAfterMs: 100, maxConcurrent: 8, maxQueued: 8 };
const credentials = { clientId: 'gateway', clientSecret: 'tax-demo-secret' };
const adapter = () => createTaxAdapter({ baseUrl: BASE, resilience, ...credentials });
const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e) => e.code as string);

/** Recorded answers of the tax authority, in its own format. */
const recordedObligations = {
  ma_loi: '00', thong_bao: 'Thành công', ma_giao_dich: 'GD000000000042', tong_so: 2,
  danh_sach: [
    {
      so_thong_bao: 'TB-2025-000003', loai: 'LE_PHI_TRUOC_BA', mst: '042190445566', thua_dat: { ma_xa: '18070', to_ban_do: 21, thua_so: 77 },
      so_tien: 8_500_000, ngay_thong_bao: '05/01/2025', han_nop: '23/03/2025', trang_thai: 'CHUA_NOP', ngay_nop: null,
    },
    {
      so_thong_bao: 'TB-2024-000009', loai: 'TIEN_SU_DUNG_DAT', mst: '042190445566', thua_dat: { ma_xa: '18070', to_ban_do: 21, thua_so: 77 },
      so_tien: 1_000_000, ngay_thong_bao: '05/01/2024', han_nop: '05/03/2024', trang_thai: 'DA_NOP', ngay_nop: '01/03/2024',
    },
  ],
};
const emptyObligations = { ma_loi: '00', thong_bao: 'Thành công', ma_giao_dich: 'GD000000000043', tong_so: 0, danh_sach: [] };
const REFERENCE = 'land-office:key-0001-abcd';
const recordedDeclaration = {
  ma_loi: '00', thong_bao: 'Đã tiếp nhận tờ khai', ma_giao_dich: 'GD000000000044',
  to_khai: {
    ma_tham_chieu: REFERENCE, so_thong_bao: 'TB-2026-100001', thoi_diem_nop: '2026-11-23T15:00:00+07:00', ma_ho_so: 'HS-2026-000123',
    cac_khoan: [
      { loai: 'LE_PHI_TRUOC_BA', can_cu_tinh: 2_400_000_000, ty_le: 0.005, so_tien: 12_000_000, han_nop: '23/12/2026', mst: '079072112233' },
      { loai: 'THUE_TNCN', can_cu_tinh: 2_400_000_000, ty_le: 0.02, so_tien: 48_000_000, han_nop: '23/12/2026', mst: '042190445566' },
    ],
  },
};
const sheet: TransferSheet = {
  dossierCode: 'HS-2026-000123',
  transferor: { personalId: '042190445566', fullName: 'Phạm Thị Dung' },
  transferee: { personalId: '079072112233', fullName: 'Lê Văn Cường' },
  parcel: { communeCode: '18070', mapSheet: 21, parcelNumber: 77 },
  certificateSerial: 'CS 100003',
  declaredPrice: 2_400_000_000,
  contractDate: '2026-11-20',
};

const tokenEndpoint = () => nock(BASE).post('/oauth2/token', 'grant_type=client_credentials').basicAuth({ user: 'gateway', pass: 'tax-demo-secret' });
const token = (accessToken: string, expiresIn = 3600) => tokenEndpoint().reply(200, { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn });
const withToken = (accessToken: string) => nock(BASE, { reqheaders: { authorization: `Bearer ${accessToken}` } });
const byTaxCode = (accessToken = 'tok-1') => withToken(accessToken).get('/tct/api/nghia-vu-tai-chinh').query({ mst: '042190445566' });
const filing = (accessToken = 'tok-1') => withToken(accessToken).post('/tct/api/to-khai-chuyen-nhuong', (body) => body.ma_tham_chieu === REFERENCE);
const lookup = (accessToken = 'tok-1') => withToken(accessToken).get('/tct/api/to-khai-chuyen-nhuong').query({ ma_tham_chieu: REFERENCE });

afterEach(() => {
  nock.cleanAll();
  vi.restoreAllMocks();
});

describe('tax adapter: OAuth2 client credentials', () => {
  it('fetches a token once and reuses it while it is valid', async () => {
    const issued = token('tok-1');
    byTaxCode().times(2).reply(200, recordedObligations);
    const a = adapter();
    await a.getObligations({ taxCode: '042190445566' });
    await a.getObligations({ taxCode: '042190445566' });
    expect(issued.isDone()).toBe(true);
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('shares one token fetch between concurrent calls', async () => {
    token('tok-1');
    byTaxCode().times(3).reply(200, recordedObligations);
    const a = adapter();
    const answers = await Promise.all([1, 2, 3].map(() => a.getObligations({ taxCode: '042190445566' })));
    expect(answers).toHaveLength(3);
  });

  it('renews the token shortly before it expires', async () => {
    const start = Date.parse('2026-11-23T08:00:00Z');
    const clock = vi.spyOn(Date, 'now').mockReturnValue(start);
    token('tok-1', 60);
    byTaxCode('tok-1').times(2).reply(200, recordedObligations);
    const a = adapter();
    await a.getObligations({ taxCode: '042190445566' });
    clock.mockReturnValue(start + 50_000);
    await a.getObligations({ taxCode: '042190445566' });
    clock.mockReturnValue(start + 58_000);
    token('tok-2', 60);
    byTaxCode('tok-2').reply(200, recordedObligations);
    await a.getObligations({ taxCode: '042190445566' });
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('refreshes the token once on a 401 and repeats the call once', async () => {
    token('tok-1');
    byTaxCode('tok-1').reply(401, { error: 'invalid_token' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    token('tok-2');
    byTaxCode('tok-2').reply(200, recordedObligations);
    const trace: UpstreamCall[] = [];
    const r = await adapter().getObligations({ taxCode: '042190445566' }, trace);
    expect(r.obligations).toHaveLength(2);
    expect(nock.pendingMocks()).toEqual([]);
    expect(trace.map((c) => [c.operation, c.outcome])).toEqual([['oauth2/token', 'ok'], ['nghia-vu-tai-chinh', 'error'], ['oauth2/token', 'ok'], ['nghia-vu-tai-chinh', 'ok']]);
  });

  it('gives up after one refresh when the fresh token is refused too: UPSTREAM_UNAVAILABLE', async () => {
    token('tok-1');
    byTaxCode('tok-1').reply(401, { error: 'invalid_token' });
    token('tok-2');
    byTaxCode('tok-2').reply(401, { error: 'invalid_token' });
    const third = token('tok-3');
    expect(await codeOf(adapter().getObligations({ taxCode: '042190445566' }))).toBe('UPSTREAM_UNAVAILABLE');
    expect(third.isDone()).toBe(false);
  });

  it('maps refused client credentials to UPSTREAM_UNAVAILABLE', async () => {
    tokenEndpoint().times(2).reply(401, { error: 'invalid_client' });
    expect(await codeOf(adapter().getObligations({ taxCode: '042190445566' }))).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('fails at creation without client credentials', () => {
    expect(() => createTaxAdapter({ baseUrl: BASE, resilience, clientId: 'gateway', clientSecret: '' })).toThrow(TypeError);
    expect(() => createTaxAdapter({ baseUrl: 'ftp://x', resilience, ...credentials })).toThrow(TypeError);
  });
});

describe('tax adapter: obligations', () => {
  it('maps the native list to the standard answer (ISO dates, kinds, outstanding summary)', async () => {
    token('tok-1');
    byTaxCode().reply(200, recordedObligations);
    const trace: UpstreamCall[] = [];
    const r = await adapter().getObligations({ taxCode: '042190445566' }, trace);
    expect(r.obligations[0]).toEqual({
      noticeNumber: 'TB-2025-000003', kind: 'registration_fee', taxCode: '042190445566', parcel: { communeCode: '18070', mapSheet: 21, parcelNumber: 77 },
      amount: 8_500_000, issuedAt: '2025-01-05', dueDate: '2025-03-23', paid: false,
    });
    expect(r.obligations[1]).toMatchObject({ kind: 'land_use_levy', paid: true, paidAt: '2024-03-01' });
    expect(r.summary).toEqual({ outstandingAmount: 8_500_000, outstandingCount: 1 });
    expect(r.source).toMatchObject({ agency: 'tax', reference: 'GD000000000042' });
    expect(trace).toEqual([
      expect.objectContaining({ agency: 'tax', operation: 'oauth2/token', outcome: 'ok' }),
      expect.objectContaining({ agency: 'tax', operation: 'nghia-vu-tai-chinh', outcome: 'ok', reference: 'GD000000000042' }),
    ]);
  });

  it('queries by parcel with the upstream parameter names', async () => {
    token('tok-1');
    withToken('tok-1').get('/tct/api/nghia-vu-tai-chinh').query({ ma_xa: '18070', to_ban_do: '21', thua_so: '77' }).reply(200, recordedObligations);
    const r = await adapter().getObligations({ parcel: { communeCode: '18070', mapSheet: 21, parcelNumber: 77 } });
    expect(r.obligations).toHaveLength(2);
  });

  it('answers an empty list (no data) with a zero summary', async () => {
    token('tok-1');
    byTaxCode().reply(200, emptyObligations);
    const r = await adapter().getObligations({ taxCode: '042190445566' });
    expect(r.obligations).toEqual([]);
    expect(r.summary).toEqual({ outstandingAmount: 0, outstandingCount: 0 });
  });

  it('refuses an answer about another taxpayer: UPSTREAM_BAD_RESPONSE', async () => {
    token('tok-1');
    const other = { ...recordedObligations, danh_sach: [{ ...recordedObligations.danh_sach[0], mst: '001085123456' }] };
    byTaxCode().reply(200, other);
    expect(await codeOf(adapter().getObligations({ taxCode: '042190445566' }))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('times out: UPSTREAM_TIMEOUT', async () => {
    token('tok-1');
    byTaxCode().times(2).delay(500).reply(200, recordedObligations);
    expect(await codeOf(adapter().getObligations({ taxCode: '042190445566' }))).toBe('UPSTREAM_TIMEOUT');
  });

  it('gives UPSTREAM_UNAVAILABLE when 5xx persists', async () => {
    token('tok-1');
    byTaxCode().times(2).reply(503, { ma_loi: 'E503', thong_bao: 'Hệ thống đang bận' });
    expect(await codeOf(adapter().getObligations({ taxCode: '042190445566' }))).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('refuses a garbage body: UPSTREAM_BAD_RESPONSE', async () => {
    token('tok-1');
    byTaxCode().reply(200, '{"garbage": tru', { 'Content-Type': 'application/json' });
    expect(await codeOf(adapter().getObligations({ taxCode: '042190445566' }))).toBe('UPSTREAM_BAD_RESPONSE');
    token('tok-1');
    byTaxCode().reply(200, { ...recordedObligations, danh_sach: [{ ...recordedObligations.danh_sach[0], han_nop: '31/02/2025' }] });
    expect(await codeOf(adapter().getObligations({ taxCode: '042190445566' }))).toBe('UPSTREAM_BAD_RESPONSE');
  });
});

describe('tax adapter: transfer declaration', () => {
  it('files the sheet in the upstream format with the key as ma_tham_chieu', async () => {
    token('tok-1');
    let sent: any;
    filing().reply(201, (_uri, body) => {
      sent = body;
      return recordedDeclaration;
    });
    const d = await adapter().fileTransferDeclaration(sheet, REFERENCE);
    expect(sent).toMatchObject({
      ma_tham_chieu: REFERENCE, ma_ho_so: 'HS-2026-000123', gia_chuyen_nhuong: 2_400_000_000, ngay_hop_dong: '20/11/2026',
      ben_chuyen_nhuong: { so_dinh_danh: '042190445566' }, thua_dat: { ma_xa: '18070', to_ban_do: 21, thua_so: 77 }, so_phat_hanh_gcn: 'CS 100003',
    });
    expect(d).toEqual({
      noticeNumber: 'TB-2026-100001',
      filedAt: '2026-11-23T08:00:00.000Z',
      obligations: [
        { kind: 'registration_fee', base: 2_400_000_000, rate: 0.005, amount: 12_000_000, dueDate: '2026-12-23', taxCode: '079072112233' },
        { kind: 'personal_income_tax', base: 2_400_000_000, rate: 0.02, amount: 48_000_000, dueDate: '2026-12-23', taxCode: '042190445566' },
      ],
      source: { agency: 'tax', retrievedAt: expect.any(String), reference: 'GD000000000044' },
    });
  });

  it('never retries a write that timed out, and looks the reference up before filing again', async () => {
    token('tok-1');
    filing().delay(500).reply(201, recordedDeclaration);
    const secondFiling = filing().reply(201, recordedDeclaration);
    const a = adapter();
    const trace: UpstreamCall[] = [];
    expect(await codeOf(a.fileTransferDeclaration(sheet, REFERENCE, trace))).toBe('UPSTREAM_TIMEOUT');
    expect(trace.map((c) => [c.operation, c.outcome])).toEqual([['oauth2/token', 'ok'], ['to-khai-chuyen-nhuong', 'error']]);
    expect(secondFiling.isDone()).toBe(false);

    lookup().reply(200, recordedDeclaration);
    const d = await a.fileTransferDeclaration(sheet, REFERENCE);
    expect(d.noticeNumber).toBe('TB-2026-100001');
    expect(secondFiling.isDone()).toBe(false); // found by the look-up, not filed again
  });

  it('files after the look-up finds nothing', async () => {
    token('tok-1');
    lookup().reply(404, { ma_loi: 'E404', thong_bao: 'Không có tờ khai' });
    filing().reply(201, recordedDeclaration);
    const d = await adapter().fileTransferDeclaration(sheet, REFERENCE, [], { uncertain: true });
    expect(d.noticeNumber).toBe('TB-2026-100001');
    expect(nock.pendingMocks()).toEqual([]);
  });

  it('does not retry a write on a 5xx either: UPSTREAM_UNAVAILABLE', async () => {
    token('tok-1');
    filing().reply(503, { ma_loi: 'E503' });
    const second = filing().reply(201, recordedDeclaration);
    expect(await codeOf(adapter().fileTransferDeclaration(sheet, REFERENCE))).toBe('UPSTREAM_UNAVAILABLE');
    expect(second.isDone()).toBe(false);
  });

  it('repeats a write once after a 401 (nothing was filed) with a fresh token', async () => {
    token('tok-1');
    filing('tok-1').reply(401, { error: 'invalid_token' });
    token('tok-2');
    filing('tok-2').reply(201, recordedDeclaration);
    expect((await adapter().fileTransferDeclaration(sheet, REFERENCE)).noticeNumber).toBe('TB-2026-100001');
  });

  it('refuses a declaration filed under another reference: UPSTREAM_BAD_RESPONSE', async () => {
    token('tok-1');
    filing().reply(201, { ...recordedDeclaration, to_khai: { ...recordedDeclaration.to_khai, ma_tham_chieu: 'someone-else' } });
    expect(await codeOf(adapter().fileTransferDeclaration(sheet, REFERENCE))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('finds a declaration by reference, or null', async () => {
    token('tok-1');
    lookup().reply(200, recordedDeclaration);
    const a = adapter();
    expect((await a.findDeclaration(REFERENCE))?.noticeNumber).toBe('TB-2026-100001');
    lookup().reply(404, { ma_loi: 'E404' });
    expect(await a.findDeclaration(REFERENCE)).toBeNull();
  });
});
