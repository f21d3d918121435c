import type { AxiosResponse } from 'axios';
import { GatewayError } from '../../gateway/errors.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';
import type { ResilienceConfig } from '../../gateway/config/types.ts';
import { createUpstreamClient, type UpstreamObserver, type BreakerState, type UpstreamClient } from '../shared/upstream-client.ts';
import { nativeShape, requireOption } from '../shared/native.ts';
import type { ParcelRef } from '../../gateway/domain/index.ts';

export type { ParcelRef };
export interface ParcelAddress { street: string; commune: string; district: string; province: string }
export interface ParcelOwner { personalId: string; name: string; share: number }
/** One standard parcel record (contract land.parcel v1, before minimisation). */
export interface ParcelRecord extends ParcelRef {
  address: ParcelAddress;
  area: number;
  landUse: string;
  /** `long_term` or the date (YYYY-MM-DD) the right ends. */
  term: string;
  certificate: { serial: string; entryNumber: string; issueDate: string };
  owners: ParcelOwner[];
}
/** The contract's request: exactly one key. */
export type ParcelQuery = { certificateSerial: string } | { parcel: ParcelRef } | { ownerPersonalId: string };
export interface ParcelAnswer {
  /** Empty when the registry holds no such parcel: "no data" is an answer, not an error. */
  parcels: ParcelRecord[];
  /** The registry's reference of its (first) answer; null when it answered "not found" without one. */
  reference: string | null;
  retrievedAt: string;
}

export interface LandAdapter {
  readonly name: 'land';
  /** Finds parcels by certificate serial, parcel or owner, following the registry's pages. */
  findParcels(query: ParcelQuery, trace?: UpstreamCall[]): Promise<ParcelAnswer>;
  health(): Promise<{ up: boolean; breaker: BreakerState }>;
  breakerState(): BreakerState;
}

/** A registry that keeps saying "next page" past this is broken (or looping); we refuse rather than truncate. */
const MAX_PAGES = 20;
const HEALTH_PATH = '/registry/v2/health';

interface NativeParcel {
  ma_xa: string; so_to: number; so_thua: number;
  dia_chi: { so_nha_duong?: string; xa_phuong: string; quan_huyen?: string; tinh_thanh: string };
  dien_tich: number; muc_dich_su_dung: string; thoi_han: string;
  giay_chung_nhan: { so_phat_hanh: string; so_vao_so: string; ngay_cap: string };
  chu_su_dung: { so_dinh_danh: string; ho_ten: string; ty_le: number }[];
}
interface NativeSingle { thua_dat: NativeParcel; ma_yeu_cau: string }
interface NativePage { items: NativeParcel[]; page: number; page_size: number; total: number; next_page: number | null; ma_yeu_cau: string }

const text = { type: 'string' };
const nativeParcel = {
  type: 'object',
  required: ['ma_xa', 'so_to', 'so_thua', 'dia_chi', 'dien_tich', 'muc_dich_su_dung', 'thoi_han', 'giay_chung_nhan', 'chu_su_dung'],
  properties: {
    ma_xa: { type: 'string', pattern: '^[0-9]{5}$' },
    so_to: { type: 'integer', minimum: 1 },
    so_thua: { type: 'integer', minimum: 1 },
    dia_chi: { type: 'object', required: ['xa_phuong', 'tinh_thanh'], properties: { so_nha_duong: text, xa_phuong: text, quan_huyen: text, tinh_thanh: text } },
    dien_tich: { type: 'number', exclusiveMinimum: 0 },
    muc_dich_su_dung: { type: 'string', pattern: '^[A-Z]{2,4}$' },
    thoi_han: { type: 'string' },
    giay_chung_nhan: {
      type: 'object',
      required: ['so_phat_hanh', 'so_vao_so', 'ngay_cap'],
      properties: { so_phat_hanh: text, so_vao_so: { type: 'string', minLength: 1 }, ngay_cap: text },
    },
    chu_su_dung: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['so_dinh_danh', 'ho_ten', 'ty_le'],
        properties: { so_dinh_danh: text, ho_ten: { type: 'string', minLength: 1 }, ty_le: { type: 'number', exclusiveMinimum: 0, maximum: 100 } },
      },
    },
  },
};
const checkSingle = nativeShape<NativeSingle>('land', {
  type: 'object', required: ['thua_dat', 'ma_yeu_cau'], properties: { thua_dat: nativeParcel, ma_yeu_cau: text },
});
const checkPage = nativeShape<NativePage>('land', {
  type: 'object',
  required: ['items', 'page', 'page_size', 'total', 'next_page', 'ma_yeu_cau'],
  properties: {
    items: { type: 'array', items: nativeParcel },
    page: { type: 'integer', minimum: 1 },
    page_size: { type: 'integer', minimum: 1 },
    total: { type: 'integer', minimum: 0 },
    next_page: { type: ['integer', 'null'], minimum: 1 },
    ma_yeu_cau: text,
  },
});
/** The registry's own "no such record" (a 404 from a wrong base URL or route is not "no data"). */
const checkNotFound = nativeShape<{ loi: { ma: 'KHONG_TIM_THAY' } }>('land', {
  type: 'object', required: ['loi'], properties: { loi: { type: 'object', required: ['ma'], properties: { ma: { const: 'KHONG_TIM_THAY' } } } },
});

const bad = (detail: string) => new GatewayError('UPSTREAM_BAD_RESPONSE', `land: ${detail}`);

function isoDate(value: string, what: string): string {
  const d = new Date(`${value}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value) throw bad(`bad ${what}`);
  return value;
}

/** Maps one native parcel to the standard record; names in NFC, shares from percent to fractions. */
export function mapParcel(p: NativeParcel): ParcelRecord {
  const nfc = (s: string | undefined) => (s ?? '').normalize('NFC');
  return {
    communeCode: p.ma_xa,
    mapSheet: p.so_to,
    parcelNumber: p.so_thua,
    address: { street: nfc(p.dia_chi.so_nha_duong), commune: nfc(p.dia_chi.xa_phuong), district: nfc(p.dia_chi.quan_huyen), province: nfc(p.dia_chi.tinh_thanh) },
    area: p.dien_tich,
    landUse: p.muc_dich_su_dung,
    term: p.thoi_han === 'LAU_DAI' ? 'long_term' : isoDate(p.thoi_han, 'term'),
    certificate: { serial: p.giay_chung_nhan.so_phat_hanh, entryNumber: p.giay_chung_nhan.so_vao_so, issueDate: isoDate(p.giay_chung_nhan.ngay_cap, 'issue date') },
    owners: p.chu_su_dung.map((o) => ({ personalId: o.so_dinh_danh, name: nfc(o.ho_ten), share: o.ty_le / 100 })),
  };
}

const sameRef = (a: ParcelRef, b: ParcelRef) => a.communeCode === b.communeCode && a.mapSheet === b.mapSheet && a.parcelNumber === b.parcelNumber;

export interface LandAdapterOptions { baseUrl: string; resilience: ResilienceConfig; observer?: UpstreamObserver }

/** The land registry behind the standard land.parcel contract. */
export function createLandAdapter(options: LandAdapterOptions): LandAdapter {
  requireOption('land', 'baseUrl', typeof options?.baseUrl === 'string' && /^https?:\/\//.test(options.baseUrl));
  requireOption('land', 'resilience', typeof options.resilience?.timeoutMs === 'number');
  const client = createUpstreamClient({ agency: 'land', baseUrl: options.baseUrl, resilience: options.resilience, observer: options.observer });
  return {
    name: 'land',
    async findParcels(query, trace) {
      let found: Omit<ParcelAnswer, 'retrievedAt'>;
      if ('certificateSerial' in query) {
        const serial = query.certificateSerial;
        found = await singleParcel(client, trace, 'certificates/parcel', `/registry/v2/certificates/${encodeURIComponent(serial)}/parcel`,
          (p) => p.certificate.serial === serial);
      } else if ('parcel' in query) {
        const ref = query.parcel;
        found = await singleParcel(client, trace, 'parcels/by-ref', `/registry/v2/parcels/${encodeURIComponent(ref.communeCode)}/${ref.mapSheet}/${ref.parcelNumber}`,
          (p) => sameRef(p, ref));
      } else if ('ownerPersonalId' in query) {
        found = await parcelsOfOwner(client, trace, query.ownerPersonalId);
      } else {
        throw new GatewayError('REQUEST_INVALID', 'give a certificate serial, a parcel or an owner personal id');
      }
      return { ...found, retrievedAt: new Date().toISOString() };
    },
    async health() {
      return { up: await client.probe(HEALTH_PATH), breaker: client.breakerState() };
    },
    breakerState: client.breakerState,
  };
}

/** One parcel by a unique key; the registry's "not found" is an empty list. */
function singleParcel(client: UpstreamClient, trace: UpstreamCall[] | undefined, operation: string, url: string, isTheOneAsked: (p: ParcelRecord) => boolean) {
  return client.call({
    operation,
    idempotent: true,
    trace,
    request: { method: 'GET', url },
    interpret: (res: AxiosResponse) => {
      if (res.status === 404) {
        checkNotFound(res.data);
        return { parcels: [], reference: null };
      }
      if (res.status !== 200) throw bad(`HTTP ${res.status}`);
      const answer = checkSingle(res.data);
      const parcel = mapParcel(answer.thua_dat);
      if (!isTheOneAsked(parcel)) throw bad('answered about another parcel');
      return { parcels: [parcel], reference: answer.ma_yeu_cau };
    },
    referenceOf: (r) => r.reference,
  });
}

/** Every parcel of an owner, one upstream call per page, refusing a list it cannot read to its end. */
async function parcelsOfOwner(client: UpstreamClient, trace: UpstreamCall[] | undefined, ownerId: string) {
  const parcels = new Map<string, ParcelRecord>();
  let reference: string | null = null;
  let page = 1;
  for (let fetched = 0; ; fetched++) {
    if (fetched === MAX_PAGES) throw bad(`more than ${MAX_PAGES} pages`);
    const requested = page;
    const answer = await client.call({
      operation: 'parcels/by-owner',
      idempotent: true,
      trace,
      request: { method: 'GET', url: '/registry/v2/parcels', params: { owner_id: ownerId, page: requested } },
      interpret: (res: AxiosResponse) => {
        if (res.status !== 200) throw bad(`HTTP ${res.status}`);
        const native = checkPage(res.data);
        if (native.page !== requested) throw bad('answered another page');
        const items = native.items.map(mapParcel);
        if (!items.every((p) => p.owners.some((o) => o.personalId === ownerId))) throw bad('listed a parcel of another owner');
        return { items, next: native.next_page, reference: native.ma_yeu_cau };
      },
      referenceOf: (r) => r.reference,
    });
    reference ??= answer.reference;
    // A record that moved between pages while we read must not appear twice.
    for (const p of answer.items) parcels.set(`${p.communeCode}/${p.mapSheet}/${p.parcelNumber}`, p);
    if (answer.next === null) break;
    if (answer.next <= requested) throw bad('next page goes backwards');
    page = answer.next;
  }
  return { parcels: [...parcels.values()], reference };
}
