import nock from 'nock';
import { afterEach, describe, expect, it } from 'vitest';
import { createLandAdapter, type LandAdapter } from '../../adapters/land/index.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';
import type { ResilienceConfig } from '../../gateway/config/types.ts';

const BASE = 'http://land-registry.test';
const resilience = (over: Partial<ResilienceConfig> = {}): ResilienceConfig => ({
  timeoutMs: 200, retries: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 5, breakerThreshold: 100, breakerHalfOpenAfterMs: 1000, maxConcurrent: 4, maxQueued: 16, ...over,
});
const adapter = (over: Partial<ResilienceConfig> = {}): LandAdapter => createLandAdapter({ baseUrl: BASE, resilience: resilience(over) });
const registry = () => nock(BASE);

// Native payloads as recorded from the land registry simulator (GET /registry/v2/...).
const CS_100001 = {
  thua_dat: {
    ma_xa: '00004', so_to: 12, so_thua: 345,
    dia_chi: { so_nha_duong: 'Số 67 Đường Hà Huy Tập', xa_phuong: 'Phường Ba Đình', quan_huyen: 'Quận Ba Đình', tinh_thanh: 'Hà Nội' },
    dien_tich: 2051.2, muc_dich_su_dung: 'ODT', thoi_han: 'LAU_DAI',
    giay_chung_nhan: { so_phat_hanh: 'CS 100001', so_vao_so: 'CS00001', ngay_cap: '2011-02-27' },
    chu_su_dung: [{ so_dinh_danh: '001085123456', ho_ten: 'Nguyễn Văn An', ty_le: 50 }, { so_dinh_danh: '001188654321', ho_ten: 'Trần Thị Bình', ty_le: 50 }],
  },
  ma_yeu_cau: 'DD0000000001',
};
const CS_100005 = {
  thua_dat: {
    ma_xa: '27139', so_to: 30, so_thua: 501,
    dia_chi: { so_nha_duong: 'Số 172 Đường Lê Lợi', xa_phuong: 'Phường Thảo Điền', quan_huyen: 'Thành phố Thủ Đức', tinh_thanh: 'Hồ Chí Minh' },
    dien_tich: 1360.8, muc_dich_su_dung: 'LUC', thoi_han: '2066-12-31',
    giay_chung_nhan: { so_phat_hanh: 'CS 100005', so_vao_so: 'CS00005', ngay_cap: '2016-09-20' },
    chu_su_dung: [{ so_dinh_danh: '079179246810', ho_ten: 'Dang Thi Huong', ty_le: 100 }],
  },
  ma_yeu_cau: 'DD0000000002',
};
const NOT_FOUND = { loi: { ma: 'KHONG_TIM_THAY', thong_bao: 'Không tìm thấy giấy chứng nhận' } };
const OWNER = '001085123456';
/** The same owner's parcel at another place, for a list that spans pages. */
const ownedAt = (ma_xa: string, so_to: number, so_thua: number, n: number) => ({
  ...CS_100001.thua_dat, ma_xa, so_to, so_thua,
  giay_chung_nhan: { so_phat_hanh: `CS 2000${n}0`, so_vao_so: `CS2000${n}`, ngay_cap: '2015-05-05' },
  chu_su_dung: [{ so_dinh_danh: OWNER, ho_ten: 'Nguyễn Văn An', ty_le: 100 }],
});
const page = (n: number, items: unknown[], next: number | null, total = 3) => ({ items, page: n, page_size: 2, total, next_page: next, ma_yeu_cau: `DD00000001${n}0` });

afterEach(() => {
  nock.abortPendingRequests();
  nock.cleanAll();
});

describe('land adapter: mapping the registry', () => {
  it('finds a parcel by certificate serial and maps it to the standard record', async () => {
    const scope = registry().get('/registry/v2/certificates/CS%20100001/parcel').reply(200, CS_100001);
    const trace: UpstreamCall[] = [];
    const answer = await adapter().findParcels({ certificateSerial: 'CS 100001' }, trace);
    expect(answer.parcels).toEqual([{
      communeCode: '00004', mapSheet: 12, parcelNumber: 345,
      address: { street: 'Số 67 Đường Hà Huy Tập', commune: 'Phường Ba Đình', district: 'Quận Ba Đình', province: 'Hà Nội' },
      area: 2051.2, landUse: 'ODT', term: 'long_term',
      certificate: { serial: 'CS 100001', entryNumber: 'CS00001', issueDate: '2011-02-27' },
      owners: [{ personalId: '001085123456', name: 'Nguyễn Văn An', share: 0.5 }, { personalId: '001188654321', name: 'Trần Thị Bình', share: 0.5 }],
    }]);
    expect(answer.reference).toBe('DD0000000001');
    expect(Number.isNaN(Date.parse(answer.retrievedAt))).toBe(false);
    expect(trace).toMatchObject([{ agency: 'land', operation: 'certificates/parcel', outcome: 'ok', reference: 'DD0000000001' }]);
    expect(scope.isDone()).toBe(true);
  });

  it('finds a parcel by commune, map sheet and parcel number', async () => {
    registry().get('/registry/v2/parcels/27139/30/501').reply(200, CS_100005);
    const answer = await adapter().findParcels({ parcel: { communeCode: '27139', mapSheet: 30, parcelNumber: 501 } });
    expect(answer.parcels).toHaveLength(1);
    expect(answer.parcels[0]).toMatchObject({ landUse: 'LUC', term: '2066-12-31', certificate: { serial: 'CS 100005' } });
    expect(answer.parcels[0]!.owners).toEqual([{ personalId: '079179246810', name: 'Dang Thi Huong', share: 1 }]);
  });

  it('finds an owner\'s parcels by personal id, following next_page across pages', async () => {
    const scope = registry()
      .get('/registry/v2/parcels').query({ owner_id: OWNER, page: '1' }).reply(200, page(1, [CS_100001.thua_dat, ownedAt('00070', 3, 44, 1)], 2))
      .get('/registry/v2/parcels').query({ owner_id: OWNER, page: '2' }).reply(200, page(2, [ownedAt('02212', 7, 8, 2)], null));
    const trace: UpstreamCall[] = [];
    const answer = await adapter().findParcels({ ownerPersonalId: OWNER }, trace);
    expect(answer.parcels.map((p) => `${p.communeCode}/${p.mapSheet}/${p.parcelNumber}`)).toEqual(['00004/12/345', '00070/3/44', '02212/7/8']);
    expect(answer.reference).toBe('DD0000000110');
    expect(trace.map((c) => c.operation)).toEqual(['parcels/by-owner', 'parcels/by-owner']);
    expect(scope.isDone()).toBe(true);
  });

  it('keeps a record that moved between pages only once', async () => {
    registry()
      .get('/registry/v2/parcels').query({ owner_id: OWNER, page: '1' }).reply(200, page(1, [CS_100001.thua_dat, ownedAt('00070', 3, 44, 1)], 2))
      .get('/registry/v2/parcels').query({ owner_id: OWNER, page: '2' }).reply(200, page(2, [ownedAt('00070', 3, 44, 1)], null));
    const answer = await adapter().findParcels({ ownerPersonalId: OWNER });
    expect(answer.parcels).toHaveLength(2);
  });

  it('writes names in Unicode NFC whatever form the registry sends', async () => {
    const decomposed = structuredClone(CS_100001);
    decomposed.thua_dat.chu_su_dung[0]!.ho_ten = 'Nguyễn Văn An'.normalize('NFD');
    registry().get('/registry/v2/certificates/CS%20100001/parcel').reply(200, decomposed);
    const answer = await adapter().findParcels({ certificateSerial: 'CS 100001' });
    expect(answer.parcels[0]!.owners[0]!.name).toBe('Nguyễn Văn An'.normalize('NFC'));
  });
});

describe('land adapter: no data is an empty list', () => {
  it('maps the registry\'s 404 for a certificate to an empty list', async () => {
    registry().get('/registry/v2/certificates/CS%20999999/parcel').reply(404, NOT_FOUND);
    const trace: UpstreamCall[] = [];
    const answer = await adapter().findParcels({ certificateSerial: 'CS 999999' }, trace);
    expect(answer).toMatchObject({ parcels: [], reference: null });
    expect(trace).toMatchObject([{ outcome: 'ok', errorCode: null }]);
  });

  it('maps the registry\'s 404 for a parcel to an empty list', async () => {
    registry().get('/registry/v2/parcels/00004/1/1').reply(404, NOT_FOUND);
    expect((await adapter().findParcels({ parcel: { communeCode: '00004', mapSheet: 1, parcelNumber: 1 } })).parcels).toEqual([]);
  });

  it('gives an empty list for an owner with no parcels', async () => {
    registry().get('/registry/v2/parcels').query({ owner_id: '001099000001', page: '1' }).reply(200, page(1, [], null, 0));
    expect((await adapter().findParcels({ ownerPersonalId: '001099000001' })).parcels).toEqual([]);
  });

  it('does not take a 404 outside the registry\'s error shape (a wrong route) for "no data"', async () => {
    registry().get('/registry/v2/certificates/CS%20100001/parcel').reply(404, '<html>Not Found</html>', { 'Content-Type': 'text/html' });
    await expect(adapter().findParcels({ certificateSerial: 'CS 100001' })).rejects.toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE' });
  });
});

describe('land adapter: failures map to the catalogue', () => {
  it('times out as UPSTREAM_TIMEOUT', async () => {
    registry().get('/registry/v2/certificates/CS%20100001/parcel').delay(2000).reply(200, CS_100001);
    const trace: UpstreamCall[] = [];
    await expect(adapter().findParcels({ certificateSerial: 'CS 100001' }, trace)).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(trace).toMatchObject([{ outcome: 'error', errorCode: 'UPSTREAM_TIMEOUT' }]);
  });

  it('gives UPSTREAM_UNAVAILABLE when the registry keeps answering 5xx', async () => {
    const scope = registry().get('/registry/v2/certificates/CS%20100001/parcel').times(2).reply(503, { loi: { ma: 'HE_THONG_BAN', thong_bao: 'Hệ thống đang bảo trì' } });
    await expect(adapter({ retries: 1 }).findParcels({ certificateSerial: 'CS 100001' })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(scope.isDone()).toBe(true);
  });

  it('retries a read after one 5xx and then succeeds', async () => {
    registry().get('/registry/v2/certificates/CS%20100001/parcel').reply(502).get('/registry/v2/certificates/CS%20100001/parcel').reply(200, CS_100001);
    const answer = await adapter({ retries: 1 }).findParcels({ certificateSerial: 'CS 100001' });
    expect(answer.parcels).toHaveLength(1);
  });

  it('refuses a garbage body as UPSTREAM_BAD_RESPONSE', async () => {
    registry().get('/registry/v2/certificates/CS%20100001/parcel').reply(200, '{"garbage": tru', { 'Content-Type': 'application/json' });
    await expect(adapter().findParcels({ certificateSerial: 'CS 100001' })).rejects.toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE' });
  });

  it('refuses well-formed JSON of the wrong shape as UPSTREAM_BAD_RESPONSE', async () => {
    const wrong = structuredClone(CS_100001) as { thua_dat: Record<string, unknown> };
    delete wrong.thua_dat.chu_su_dung;
    registry().get('/registry/v2/certificates/CS%20100001/parcel').reply(200, wrong);
    await expect(adapter().findParcels({ certificateSerial: 'CS 100001' })).rejects.toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE' });
  });

  it('refuses an answer about another certificate than the one asked', async () => {
    registry().get('/registry/v2/certificates/CS%20100005/parcel').reply(200, CS_100001);
    await expect(adapter().findParcels({ certificateSerial: 'CS 100005' })).rejects.toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE' });
  });

  it('refuses an owner list holding someone else\'s parcel', async () => {
    registry().get('/registry/v2/parcels').query({ owner_id: '079179246810', page: '1' }).reply(200, page(1, [CS_100001.thua_dat], null, 1));
    await expect(adapter().findParcels({ ownerPersonalId: '079179246810' })).rejects.toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE' });
  });

  it('refuses a list that pages past the bound rather than truncating it', async () => {
    const scope = registry().get('/registry/v2/parcels').query(true).times(20)
      .reply((uri) => {
        const n = Number(new URL(uri, BASE).searchParams.get('page'));
        return [200, page(n, [ownedAt('00070', n, n, 1)], n + 1, 99)];
      });
    await expect(adapter().findParcels({ ownerPersonalId: OWNER })).rejects.toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE' });
    expect(scope.isDone()).toBe(true);
  });

  it('refuses a redirect without following it', async () => {
    registry().get('/registry/v2/certificates/CS%20100001/parcel').reply(302, '', { Location: 'http://elsewhere.test/steal' });
    const elsewhere = nock('http://elsewhere.test').get('/steal').reply(200, CS_100001);
    await expect(adapter().findParcels({ certificateSerial: 'CS 100001' })).rejects.toMatchObject({ code: 'UPSTREAM_BAD_RESPONSE' });
    expect(elsewhere.isDone()).toBe(false);
  });
});

describe('land adapter: options', () => {
  it('fails at start-up on a missing or non-http base URL or missing resilience', () => {
    expect(() => createLandAdapter({ baseUrl: 'ftp://x', resilience: resilience() })).toThrow(TypeError);
    expect(() => createLandAdapter({ baseUrl: BASE } as never)).toThrow(TypeError);
    expect(() => createLandAdapter(undefined as never)).toThrow(TypeError);
  });

  it('reports health from the registry\'s health route', async () => {
    registry().get('/registry/v2/health').reply(200, { trang_thai: 'UP' });
    expect(await adapter().health()).toEqual({ up: true, breaker: 'closed' });
  });
});
