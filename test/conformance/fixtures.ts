/**
 * What the shared conformance suite needs to know of each adapter: one request answered with
 * data, one with none, how a recorded answer is made to break the contract while still passing
 * the adapter's own checks, and how to call the adapter directly for recording.
 */
import type { Adapters } from '../../adapters/index.ts';
import { createAdapters } from '../../adapters/index.ts';
import type { AgencyName, GatewayConfig } from '../../gateway/config/types.ts';

export interface ConformanceFixture {
  agency: AgencyName;
  service: string;
  request: Record<string, unknown>;
  /** Call the adapter for `request` (recording the real exchange). */
  call(adapters: Adapters, request: Record<string, unknown>): Promise<unknown>;
  noData: { request: Record<string, unknown>; expect: { status: 404; code: 'SUBJECT_NOT_FOUND' } | { status: 200; empty: (body: any) => boolean } };
  /** Turns the recorded success body into one the contract refuses (the adapter's own checks still pass). */
  breakContract(body: string): string;
  /** A garbage body in the upstream's media type. */
  malformed: { body: string; contentType: string };
}

/** An id with a valid shape (12 digits) but no such province: the adapter passes it, the contract refuses it. */
const BAD_ID = '999000000000';

export const fixtures: ConformanceFixture[] = [
  {
    agency: 'population', service: 'population.identity', request: { personalId: '001085123456' },
    call: (a, r) => a.population.getIdentity(r.personalId as string),
    noData: { request: { personalId: '001099000001' }, expect: { status: 404, code: 'SUBJECT_NOT_FOUND' } },
    breakContract: (b) => b.replace('"voChong":{"soDinhDanh":"001188654321"', `"voChong":{"soDinhDanh":"${BAD_ID}"`),
    malformed: { body: '{"maKetQua": "00", "duLieu": ', contentType: 'application/json' },
  },
  {
    agency: 'land', service: 'land.parcel', request: { certificateSerial: 'CS 100002' },
    call: (a, r) => a.land.findParcels(r as never),
    noData: { request: { certificateSerial: 'CS 999999' }, expect: { status: 200, empty: (b) => Array.isArray(b.parcels) && b.parcels.length === 0 } },
    breakContract: (b) => b.replace('"so_dinh_danh":"079072112233"', `"so_dinh_danh":"${BAD_ID}"`),
    malformed: { body: '{"thua_dat": {"ma_xa": ', contentType: 'application/json' },
  },
  {
    agency: 'justice', service: 'justice.secured-transactions', request: { certificateSerial: 'CS 100002' },
    call: (a, r) => a.justice.findRegistrations(r as never),
    noData: { request: { certificateSerial: 'CS 999999' }, expect: { status: 200, empty: (b) => Array.isArray(b.registrations) && b.registrations.length === 0 } },
    breakContract: (b) => b.replace('<SoDinhDanh>079072112233</SoDinhDanh>', `<SoDinhDanh>${BAD_ID}</SoDinhDanh>`),
    malformed: { body: '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Tra', contentType: 'text/xml; charset=utf-8' },
  },
  {
    agency: 'tax', service: 'tax.obligations', request: { parcel: { communeCode: '18070', mapSheet: 21, parcelNumber: 77 } },
    call: (a, r) => a.tax.getObligations(r as never),
    noData: { request: { taxCode: '001188654321' }, expect: { status: 200, empty: (b) => Array.isArray(b.obligations) && b.obligations.length === 0 } },
    breakContract: (b) => b.replaceAll('"mst":"042190445566"', `"mst":"${BAD_ID}"`),
    malformed: { body: '{"du_lieu": [', contentType: 'application/json' },
  },
];

/** Adapters pointed at one agency's base URL (others unused). */
export function adaptersAt(cfg: GatewayConfig, agency: AgencyName, url: string): Adapters {
  const urls = { population: url, land: url, tax: url, justice: url } as Record<AgencyName, string>;
  void agency;
  return createAdapters(cfg, urls);
}
