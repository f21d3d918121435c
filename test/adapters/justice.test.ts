import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createJusticeAdapter, createJusticeSimulator, type JusticeAdapter } from '../../adapters/justice/index.ts';
import { listenOnLoopback } from '../../adapters/index.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';
import type { ResilienceConfig } from '../../gateway/config/types.ts';

const BASE = 'http://secured-transactions.test';
const PATH = '/soap/SecuredTransactions';
const resilience = (over: Partial<ResilienceConfig> = {}): ResilienceConfig => ({
  timeoutMs: 200, retries: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 5, breakerThreshold: 100, breakerHalfOpenAfterMs: 1000, maxConcurrent: 4, maxQueued: 16, ...over,
});
const adapter = (over: Partial<ResilienceConfig> = {}): JusticeAdapter => createJusticeAdapter({ baseUrl: BASE, resilience: resilience(over) });
const XML = { 'Content-Type': 'text/xml; charset=utf-8' };
const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e) => e.code as string);

/** The registry's endpoint, expecting `operation` as SOAPAction and a body containing `fragment`. */
const soap = (operation: string, fragment: string) =>
  nock(BASE)
    .matchHeader('soapaction', `"${operation}"`)
    .matchHeader('content-type', /^text\/xml/)
    .post(PATH, (body) => typeof body === 'string' && body.includes(`<${operation} xmlns="urn:moj.gov.vn:dang-ky-bien-phap-bao-dam:tra-cuu:v1">`) && body.includes(fragment));
const anyCall = () => nock(BASE).post(PATH);

// Answers recorded from the registry simulator (POST /soap/SecuredTransactions).
const CS_100002 = `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><TraCuuTheoGiayChungNhanResponse xmlns="urn:moj.gov.vn:dang-ky-bien-phap-bao-dam:tra-cuu:v1"><KetQuaTraCuu><MaTraCuu>DKBD-TC-0000000001</MaTraCuu><ThoiDiemTraCuu>2026-11-23T07:15:14.332Z</ThoiDiemTraCuu><SoLuong>1</SoLuong><DanhSachDangKy><DangKy><SoDangKy>BD-2023-000002</SoDangKy><ThoiDiemDangKy>2023-07-06T09:00:00+07:00</ThoiDiemDangKy><LoaiBienPhap>THE_CHAP</LoaiBienPhap><TrangThai>DA_DANG_KY</TrangThai><BenNhanBaoDam><TenToChuc>Ngân hàng TMCP Công thương Việt Nam</TenToChuc><MaSoThue>0100111948</MaSoThue></BenNhanBaoDam><BenBaoDam><SoDinhDanh>079072112233</SoDinhDanh><HoTen>Lê Văn Cường</HoTen></BenBaoDam><TaiSan><SoPhatHanhGCN>CS 100002</SoPhatHanhGCN><ThuaDat><MaXaPhuong>26734</MaXaPhuong><SoToBanDo>8</SoToBanDo><SoThuaDat>112</SoThuaDat></ThuaDat></TaiSan></DangKy></DanhSachDangKy></KetQuaTraCuu></TraCuuTheoGiayChungNhanResponse></soap:Body></soap:Envelope>`;
const NONE = `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><TraCuuTheoGiayChungNhanResponse xmlns="urn:moj.gov.vn:dang-ky-bien-phap-bao-dam:tra-cuu:v1"><KetQuaTraCuu><MaTraCuu>DKBD-TC-0000000003</MaTraCuu><ThoiDiemTraCuu>2026-11-23T07:15:14.347Z</ThoiDiemTraCuu><SoLuong>0</SoLuong><DanhSachDangKy/></KetQuaTraCuu></TraCuuTheoGiayChungNhanResponse></soap:Body></soap:Envelope>`;
const CLIENT_FAULT = `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>Số phát hành giấy chứng nhận không hợp lệ</faultstring><detail><LoiNghiepVu xmlns="urn:moj.gov.vn:dang-ky-bien-phap-bao-dam:tra-cuu:v1"><MaLoi>DKBD-400</MaLoi><MoTa>Số phát hành giấy chứng nhận không hợp lệ</MoTa></LoiNghiepVu></detail></soap:Fault></soap:Body></soap:Envelope>`;
const SERVER_FAULT = `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Lỗi hệ thống</faultstring><detail><LoiNghiepVu xmlns="urn:moj.gov.vn:dang-ky-bien-phap-bao-dam:tra-cuu:v1"><MaLoi>DKBD-500</MaLoi><MoTa>Hệ thống đang gặp sự cố, vui lòng thử lại sau</MoTa></LoiNghiepVu></detail></soap:Fault></soap:Body></soap:Envelope>`;
// Pretty-printed with another envelope prefix, as other SOAP stacks write it: a parcel mortgaged twice (released, then again).
const PARCEL_TWICE = `<?xml version="1.0" encoding="utf-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header/>
  <SOAP-ENV:Body>
    <ns2:TraCuuTheoThuaDatResponse xmlns:ns2="urn:moj.gov.vn:dang-ky-bien-phap-bao-dam:tra-cuu:v1">
      <ns2:KetQuaTraCuu>
        <ns2:MaTraCuu>DKBD-TC-0000000042</ns2:MaTraCuu>
        <ns2:ThoiDiemTraCuu>2026-11-23T07:20:00Z</ns2:ThoiDiemTraCuu>
        <ns2:SoLuong>2</ns2:SoLuong>
        <ns2:DanhSachDangKy>
          <ns2:DangKy>
            <ns2:SoDangKy>BD-2015-000311</ns2:SoDangKy>
            <ns2:ThoiDiemDangKy>2015-03-02T09:00:00+07:00</ns2:ThoiDiemDangKy>
            <ns2:LoaiBienPhap>THE_CHAP</ns2:LoaiBienPhap>
            <ns2:TrangThai>DA_XOA</ns2:TrangThai>
            <ns2:ThoiDiemXoa>2019-12-20T10:00:00+07:00</ns2:ThoiDiemXoa>
            <ns2:BenNhanBaoDam><ns2:TenToChuc>Ngân hàng A &amp; B</ns2:TenToChuc><ns2:MaSoThue>0100686417</ns2:MaSoThue></ns2:BenNhanBaoDam>
            <ns2:BenBaoDam><ns2:SoDinhDanh>079072112233</ns2:SoDinhDanh><ns2:HoTen>Lê Văn Cường</ns2:HoTen></ns2:BenBaoDam>
            <ns2:TaiSan><ns2:SoPhatHanhGCN>CS 100002</ns2:SoPhatHanhGCN><ns2:ThuaDat><ns2:MaXaPhuong>26734</ns2:MaXaPhuong><ns2:SoToBanDo>8</ns2:SoToBanDo><ns2:SoThuaDat>112</ns2:SoThuaDat></ns2:ThuaDat></ns2:TaiSan>
          </ns2:DangKy>
          <ns2:DangKy>
            <ns2:SoDangKy>BD-2023-000002</ns2:SoDangKy>
            <ns2:ThoiDiemDangKy>2023-07-06T09:00:00+07:00</ns2:ThoiDiemDangKy>
            <ns2:LoaiBienPhap>THE_CHAP</ns2:LoaiBienPhap>
            <ns2:TrangThai>DA_DANG_KY</ns2:TrangThai>
            <ns2:BenNhanBaoDam><ns2:TenToChuc>Ngân hàng TMCP Công thương Việt Nam</ns2:TenToChuc><ns2:MaSoThue>0100111948</ns2:MaSoThue></ns2:BenNhanBaoDam>
            <ns2:BenBaoDam><ns2:SoDinhDanh>079072112233</ns2:SoDinhDanh><ns2:HoTen>Le&#x302; Văn Cường</ns2:HoTen></ns2:BenBaoDam>
            <ns2:TaiSan><ns2:SoPhatHanhGCN>CS 100002</ns2:SoPhatHanhGCN><ns2:ThuaDat><ns2:MaXaPhuong>26734</ns2:MaXaPhuong><ns2:SoToBanDo>8</ns2:SoToBanDo><ns2:SoThuaDat>112</ns2:SoThuaDat></ns2:ThuaDat></ns2:TaiSan>
          </ns2:DangKy>
        </ns2:DanhSachDangKy>
      </ns2:KetQuaTraCuu>
    </ns2:TraCuuTheoThuaDatResponse>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>`;
const byGrantorAnswer = (xml: string) => xml.replaceAll('TraCuuTheoGiayChungNhanResponse', 'TraCuuTheoBenBaoDamResponse');

const CUONG = '079072112233';
const PARCEL = { communeCode: '26734', mapSheet: 8, parcelNumber: 112 };
const ACTIVE = {
  registrationNumber: 'BD-2023-000002', registeredAt: '2023-07-06T09:00:00+07:00', kind: 'mortgage', status: 'registered',
  securedParty: { name: 'Ngân hàng TMCP Công thương Việt Nam', taxCode: '0100111948' },
  grantor: { personalId: CUONG, name: 'Lê Văn Cường' },
  property: { parcel: PARCEL, certificateSerial: 'CS 100002' },
};

afterEach(() => {
  nock.abortPendingRequests();
  nock.cleanAll();
});

describe('justice adapter: reading the registry', () => {
  it('finds the mortgage on a certificate (one result) and records the registry\'s reference', async () => {
    const scope = soap('TraCuuTheoGiayChungNhan', '<SoPhatHanh>CS 100002</SoPhatHanh>').reply(200, CS_100002, XML);
    const trace: UpstreamCall[] = [];
    const answer = await adapter().findRegistrations({ certificateSerial: 'CS 100002' }, trace);
    expect(answer.registrations).toEqual([ACTIVE]);
    expect(answer.reference).toBe('DKBD-TC-0000000001');
    expect(Number.isNaN(Date.parse(answer.retrievedAt))).toBe(false);
    expect(trace).toMatchObject([{ agency: 'justice', operation: 'TraCuuTheoGiayChungNhan', outcome: 'ok', reference: 'DKBD-TC-0000000001' }]);
    expect(scope.isDone()).toBe(true);
  });

  it('finds every registration on a parcel (several results), whatever the envelope prefix and layout', async () => {
    soap('TraCuuTheoThuaDat', '<MaXaPhuong>26734</MaXaPhuong><SoToBanDo>8</SoToBanDo><SoThuaDat>112</SoThuaDat>').reply(200, PARCEL_TWICE, XML);
    const answer = await adapter().findRegistrations({ parcel: PARCEL });
    expect(answer.registrations).toHaveLength(2);
    expect(answer.registrations[0]).toMatchObject({
      registrationNumber: 'BD-2015-000311', status: 'released', releasedAt: '2019-12-20T10:00:00+07:00',
      securedParty: { name: 'Ngân hàng A & B', taxCode: '0100686417' }, property: { parcel: PARCEL, certificateSerial: 'CS 100002' },
    });
    // A character reference written decomposed comes out in NFC.
    expect(answer.registrations[1]).toEqual(ACTIVE);
    expect(answer.reference).toBe('DKBD-TC-0000000042');
  });

  it('finds a grantor\'s registrations by personal id', async () => {
    soap('TraCuuTheoBenBaoDam', `<SoDinhDanh>${CUONG}</SoDinhDanh>`).reply(200, byGrantorAnswer(CS_100002), XML);
    const answer = await adapter().findRegistrations({ grantorPersonalId: CUONG });
    expect(answer.registrations).toEqual([ACTIVE]);
  });

  it('gives an empty list when the registry holds none', async () => {
    soap('TraCuuTheoGiayChungNhan', '<SoPhatHanh>CS 999999</SoPhatHanh>').reply(200, NONE, XML);
    const trace: UpstreamCall[] = [];
    const answer = await adapter().findRegistrations({ certificateSerial: 'CS 999999' }, trace);
    expect(answer.registrations).toEqual([]);
    expect(answer.reference).toBe('DKBD-TC-0000000003');
    expect(trace).toMatchObject([{ outcome: 'ok' }]);
  });

  it('refuses an answer about another key, or whose count disagrees with its list', async () => {
    soap('TraCuuTheoGiayChungNhan', 'CS 100009').reply(200, CS_100002, XML);
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100009' }))).toBe('UPSTREAM_BAD_RESPONSE');
    anyCall().reply(200, CS_100002.replace('<SoLuong>1</SoLuong>', '<SoLuong>2</SoLuong>'), XML);
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('refuses a result element of another operation and a registration outside the native schema', async () => {
    anyCall().reply(200, CS_100002, XML);
    expect(await codeOf(adapter().findRegistrations({ grantorPersonalId: CUONG }))).toBe('UPSTREAM_BAD_RESPONSE');
    anyCall().reply(200, CS_100002.replace('<LoaiBienPhap>THE_CHAP</LoaiBienPhap>', '<LoaiBienPhap>CAM_CO</LoaiBienPhap>'), XML);
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
    anyCall().reply(200, CS_100002.replace('<TrangThai>DA_DANG_KY</TrangThai>', '<TrangThai>DA_XOA</TrangThai>'), XML);
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
  });
});

describe('justice adapter: SOAP faults and failures', () => {
  it('maps a soap:Client fault (HTTP 500) to UPSTREAM_BAD_RESPONSE without retrying', async () => {
    const scope = anyCall().once().reply(500, CLIENT_FAULT, XML);
    const trace: UpstreamCall[] = [];
    expect(await codeOf(adapter({ retries: 2 }).findRegistrations({ certificateSerial: 'CS 100002' }, trace))).toBe('UPSTREAM_BAD_RESPONSE');
    expect(scope.isDone()).toBe(true);
    expect(trace).toMatchObject([{ agency: 'justice', outcome: 'error', errorCode: 'UPSTREAM_BAD_RESPONSE' }]);
  });

  it('maps a soap:Server fault (HTTP 500) to UPSTREAM_UNAVAILABLE', async () => {
    anyCall().reply(500, SERVER_FAULT, XML);
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('retries a read after a soap:Server fault', async () => {
    const scope = anyCall().reply(500, SERVER_FAULT, XML).post(PATH).reply(200, CS_100002, XML);
    const answer = await adapter({ retries: 1 }).findRegistrations({ certificateSerial: 'CS 100002' });
    expect(answer.registrations).toEqual([ACTIVE]);
    expect(scope.isDone()).toBe(true);
  });

  it('refuses an answer with a DOCTYPE (external entity, XXE) with UPSTREAM_BAD_RESPONSE', async () => {
    const xxe = CS_100002
      .replace('<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>')
      .replace('Lê Văn Cường', '&x;');
    anyCall().reply(200, xxe, XML);
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('refuses a "billion laughs" entity bomb with UPSTREAM_BAD_RESPONSE, in an answer or in a fault', async () => {
    const levels = Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`).join('');
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">${levels}]>`;
    anyCall().reply(200, CS_100002.replace('<?xml version="1.0" encoding="utf-8"?>', bomb).replace('Lê Văn Cường', '&lol9;'), XML);
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
    anyCall().reply(500, SERVER_FAULT.replace('<?xml version="1.0" encoding="utf-8"?>', bomb).replace('Lỗi hệ thống', '&lol9;'), XML);
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('maps a timeout to UPSTREAM_TIMEOUT', async () => {
    anyCall().delay(2_000).reply(200, CS_100002, XML);
    expect(await codeOf(adapter({ timeoutMs: 50 }).findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_TIMEOUT');
  });

  it('maps a 5xx HTML error page to UPSTREAM_UNAVAILABLE', async () => {
    const page = '<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>';
    anyCall().reply(503, page, { 'Content-Type': 'text/html' });
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_UNAVAILABLE');
    anyCall().reply(500, page, { 'Content-Type': 'text/html' });
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_UNAVAILABLE');
  });

  it('maps garbage to UPSTREAM_BAD_RESPONSE', async () => {
    for (const [body, headers] of [
      ['{"garbage": tru', { 'Content-Type': 'application/json' }],
      ['<soap:Envelope><soap:Body><unclosed>', XML],
      ['<html><body>not soap</body></html>', XML],
      ['', XML],
    ] as const) {
      anyCall().reply(200, body, headers);
      expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
    }
  });

  it('refuses a redirect and an unexpected 4xx with UPSTREAM_BAD_RESPONSE', async () => {
    anyCall().reply(302, '', { Location: 'http://elsewhere.test/' });
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
    anyCall().reply(404, 'Not Found', { 'Content-Type': 'text/plain' });
    expect(await codeOf(adapter().findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_BAD_RESPONSE');
  });

  it('fails at start-up on a bad base URL or missing resilience', () => {
    expect(() => createJusticeAdapter({ baseUrl: 'ftp://registry', resilience: resilience() })).toThrow(TypeError);
    expect(() => createJusticeAdapter({ baseUrl: BASE } as never)).toThrow(TypeError);
  });
});

describe('justice simulator', () => {
  let sim: Awaited<ReturnType<typeof listenOnLoopback>>;
  beforeAll(async () => { sim = await listenOnLoopback(createJusticeSimulator({})); });
  afterAll(async () => { await sim.close(); });
  const post = (body: string, action = '"TraCuuTheoGiayChungNhan"') =>
    fetch(`${sim.url}${PATH}`, { method: 'POST', headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: action }, body });
  // A request as another SOAP client would send it.
  const request = (serial: string) => `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><TraCuuTheoGiayChungNhan xmlns="urn:moj.gov.vn:dang-ky-bien-phap-bao-dam:tra-cuu:v1"><SoPhatHanh>${serial}</SoPhatHanh></TraCuuTheoGiayChungNhan></soap:Body></soap:Envelope>`;

  it('answers the seed world through the adapter for each kind of key', async () => {
    const live = createJusticeAdapter({ baseUrl: sim.url, resilience: resilience({ timeoutMs: 2000 }) });
    expect((await live.findRegistrations({ certificateSerial: 'CS 100002' })).registrations).toEqual([ACTIVE]);
    expect((await live.findRegistrations({ parcel: PARCEL })).registrations).toEqual([ACTIVE]);
    expect((await live.findRegistrations({ grantorPersonalId: CUONG })).registrations).toEqual([ACTIVE]);
    expect((await live.findRegistrations({ certificateSerial: 'CS 100001' })).registrations).toMatchObject([{ status: 'released', releasedAt: expect.any(String) }]);
    expect((await live.findRegistrations({ certificateSerial: 'CS 100005' })).registrations).toMatchObject([{ status: 'amended' }]);
    expect((await live.findRegistrations({ certificateSerial: 'CS 999999' })).registrations).toEqual([]);
    expect(await live.health()).toEqual({ up: true, breaker: 'closed' });
  });

  it('refuses a request with a DOCTYPE with a soap:Client fault (HTTP 500)', async () => {
    const res = await post(request('&x;').replace('<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "CS 100002">]>'));
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).toContain('<faultcode>soap:Client</faultcode>');
    expect(text).toContain('<MaLoi>DKBD-DTD</MaLoi>');
  });

  it('refuses bad input and a SOAPAction naming another operation with soap:Client faults', async () => {
    const bad = await post(request('CS100002'));
    expect(bad.status).toBe(500);
    expect(await bad.text()).toContain('<MaLoi>DKBD-400</MaLoi>');
    const mismatch = await post(request('CS 100002'), '"TraCuuTheoBenBaoDam"');
    expect(mismatch.status).toBe(500);
    expect(await mismatch.text()).toContain('<MaLoi>DKBD-405</MaLoi>');
  });

  it('stages its own outage as a soap:Server fault with HTTP 500', async () => {
    const failing = await listenOnLoopback(createJusticeSimulator({ failureRate: 1 }));
    try {
      const live = createJusticeAdapter({ baseUrl: failing.url, resilience: resilience({ timeoutMs: 2000 }) });
      expect(await codeOf(live.findRegistrations({ certificateSerial: 'CS 100002' }))).toBe('UPSTREAM_UNAVAILABLE');
      expect(await live.health()).toMatchObject({ up: true });
    } finally {
      await failing.close();
    }
  });
});
