import type { AxiosResponse } from 'axios';
import { GatewayError } from '../../gateway/errors.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';
import type { ResilienceConfig } from '../../gateway/config/types.ts';
import { createUpstreamClient, type UpstreamObserver, type BreakerState } from '../shared/upstream-client.ts';
import { nativeShape, requireOption } from '../shared/native.ts';
import { buildEnvelope, createSafeParser, readEnvelope, SOAP_PATH, STATUS_PATH, type RegistryOperation } from './soap.ts';
import type { ParcelRef } from '../../gateway/domain/index.ts';

export type { ParcelRef };
/** One registration in the standard shape (contract justice.secured-transactions v1). */
export interface Registration {
  registrationNumber: string;
  registeredAt: string;
  kind: 'mortgage';
  status: 'registered' | 'amended' | 'released';
  releasedAt?: string;
  securedParty: { name: string; taxCode: string };
  grantor: { personalId: string; name: string };
  property: { parcel: ParcelRef; certificateSerial: string };
}
/** Exactly one key, as the contract's request allows. */
export type RegistrationQuery = { certificateSerial: string } | { parcel: ParcelRef } | { grantorPersonalId: string };
export interface RegistrationsFound { registrations: Registration[]; reference: string; retrievedAt: string }

export interface JusticeAdapter {
  readonly name: 'justice';
  /** Every registration on the key, whatever its status; an empty list when the registry holds none. */
  findRegistrations(query: RegistrationQuery, trace?: UpstreamCall[]): Promise<RegistrationsFound>;
  health(): Promise<{ up: boolean; breaker: BreakerState }>;
  breakerState(): BreakerState;
}

const text = { type: 'string', minLength: 1 };
const dateTime = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$' };
const nativeRegistration = {
  type: 'object',
  required: ['SoDangKy', 'ThoiDiemDangKy', 'LoaiBienPhap', 'TrangThai', 'BenNhanBaoDam', 'BenBaoDam', 'TaiSan'],
  properties: {
    SoDangKy: text,
    ThoiDiemDangKy: dateTime,
    LoaiBienPhap: { const: 'THE_CHAP' },
    TrangThai: { enum: ['DA_DANG_KY', 'DA_THAY_DOI', 'DA_XOA'] },
    ThoiDiemXoa: dateTime,
    BenNhanBaoDam: { type: 'object', required: ['TenToChuc', 'MaSoThue'], properties: { TenToChuc: text, MaSoThue: text } },
    BenBaoDam: { type: 'object', required: ['SoDinhDanh', 'HoTen'], properties: { SoDinhDanh: { type: 'string', pattern: '^\\d{12}$' }, HoTen: text } },
    TaiSan: {
      type: 'object',
      required: ['SoPhatHanhGCN', 'ThuaDat'],
      properties: {
        SoPhatHanhGCN: text,
        ThuaDat: {
          type: 'object',
          required: ['MaXaPhuong', 'SoToBanDo', 'SoThuaDat'],
          properties: { MaXaPhuong: { type: 'string', pattern: '^\\d{5}$' }, SoToBanDo: { type: 'string', pattern: '^[1-9]\\d{0,4}$' }, SoThuaDat: { type: 'string', pattern: '^[1-9]\\d{0,5}$' } },
        },
      },
    },
  },
  // A released registration says when; one in force must not.
  if: { properties: { TrangThai: { const: 'DA_XOA' } } },
  then: { required: ['ThoiDiemXoa'] },
  else: { not: { required: ['ThoiDiemXoa'] } },
};
interface NativeRegistration {
  SoDangKy: string; ThoiDiemDangKy: string; LoaiBienPhap: 'THE_CHAP'; TrangThai: 'DA_DANG_KY' | 'DA_THAY_DOI' | 'DA_XOA'; ThoiDiemXoa?: string;
  BenNhanBaoDam: { TenToChuc: string; MaSoThue: string };
  BenBaoDam: { SoDinhDanh: string; HoTen: string };
  TaiSan: { SoPhatHanhGCN: string; ThuaDat: { MaXaPhuong: string; SoToBanDo: string; SoThuaDat: string } };
}
interface NativeResult { KetQuaTraCuu: { MaTraCuu: string; SoLuong: string; DanhSachDangKy: '' | { DangKy?: NativeRegistration[] } } }
const checkResult = nativeShape<NativeResult>('justice', {
  type: 'object',
  required: ['KetQuaTraCuu'],
  properties: {
    KetQuaTraCuu: {
      type: 'object',
      required: ['MaTraCuu', 'SoLuong', 'DanhSachDangKy'],
      properties: {
        MaTraCuu: text,
        SoLuong: { type: 'string', pattern: '^\\d{1,6}$' },
        // An empty list arrives as an empty element, which the parser reads as ''.
        DanhSachDangKy: { anyOf: [{ const: '' }, { type: 'object', properties: { DangKy: { type: 'array', items: nativeRegistration } } }] },
      },
    },
  },
});

const STATUS = { DA_DANG_KY: 'registered', DA_THAY_DOI: 'amended', DA_XOA: 'released' } as const;

function toRegistration(n: NativeRegistration): Registration {
  return {
    registrationNumber: n.SoDangKy,
    registeredAt: n.ThoiDiemDangKy,
    kind: 'mortgage',
    status: STATUS[n.TrangThai],
    ...(n.ThoiDiemXoa ? { releasedAt: n.ThoiDiemXoa } : {}),
    securedParty: { name: n.BenNhanBaoDam.TenToChuc.normalize('NFC'), taxCode: n.BenNhanBaoDam.MaSoThue },
    grantor: { personalId: n.BenBaoDam.SoDinhDanh, name: n.BenBaoDam.HoTen.normalize('NFC') },
    property: {
      parcel: { communeCode: n.TaiSan.ThuaDat.MaXaPhuong, mapSheet: Number(n.TaiSan.ThuaDat.SoToBanDo), parcelNumber: Number(n.TaiSan.ThuaDat.SoThuaDat) },
      certificateSerial: n.TaiSan.SoPhatHanhGCN,
    },
  };
}

/** Whether a registration is about the key that was asked; a registry answering about something else is not trusted. */
function answersQuery(query: RegistrationQuery, r: Registration): boolean {
  if ('certificateSerial' in query) return r.property.certificateSerial === query.certificateSerial;
  if ('grantorPersonalId' in query) return r.grantor.personalId === query.grantorPersonalId;
  const p = r.property.parcel;
  return p.communeCode === query.parcel.communeCode && p.mapSheet === query.parcel.mapSheet && p.parcelNumber === query.parcel.parcelNumber;
}

/** Maps the registry's result element to standard registrations; an inconsistent answer is UPSTREAM_BAD_RESPONSE. */
export function mapRegistrations(query: RegistrationQuery, result: unknown): { registrations: Registration[]; reference: string } {
  const { KetQuaTraCuu: k } = checkResult(result);
  const natives = k.DanhSachDangKy === '' ? [] : (k.DanhSachDangKy.DangKy ?? []);
  if (natives.length !== Number(k.SoLuong)) throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'justice: count disagrees with the list');
  const registrations = natives.map(toRegistration);
  if (!registrations.every((r) => answersQuery(query, r))) throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'justice: answered about another key');
  return { registrations, reference: k.MaTraCuu };
}

/** The SOAP operation and its body for a standard query. */
function operationFor(query: RegistrationQuery): { operation: RegistryOperation; content: Record<string, unknown> } {
  if ('certificateSerial' in query) return { operation: 'TraCuuTheoGiayChungNhan', content: { SoPhatHanh: query.certificateSerial } };
  if ('grantorPersonalId' in query) return { operation: 'TraCuuTheoBenBaoDam', content: { SoDinhDanh: query.grantorPersonalId } };
  const { communeCode, mapSheet, parcelNumber } = query.parcel;
  return { operation: 'TraCuuTheoThuaDat', content: { MaXaPhuong: communeCode, SoToBanDo: mapSheet, SoThuaDat: parcelNumber } };
}

const parser = createSafeParser(['DangKy']);

/**
 * SOAP faults are mapped by their code: a Client fault means the registry refused a request we
 * built to its standard (so its answer is outside our agreement), a Server fault that it failed.
 * Only codes reach the detail: a faultstring may echo the personal id asked about.
 */
function faultError(fault: unknown): GatewayError {
  const f = (fault && typeof fault === 'object' ? fault : {}) as { faultcode?: unknown; detail?: { LoiNghiepVu?: { MaLoi?: unknown } } };
  const code = typeof f.faultcode === 'string' ? f.faultcode : '';
  const local = code.slice(code.indexOf(':') + 1);
  const detailCode = typeof f.detail?.LoiNghiepVu?.MaLoi === 'string' ? ` ${f.detail.LoiNghiepVu.MaLoi}` : '';
  if (/^Server(\.|$)/.test(local)) return new GatewayError('UPSTREAM_UNAVAILABLE', `justice: soap:Server fault${detailCode}`);
  return new GatewayError('UPSTREAM_BAD_RESPONSE', `justice: soap:${local || 'unknown'} fault${detailCode}`);
}

/** Reads the registry's HTTP answer: a result, a fault, or something outside SOAP. */
function interpretAnswer(operation: RegistryOperation, query: RegistrationQuery, res: AxiosResponse) {
  // SOAP 1.1 answers 200 with a result or 500 with a fault; a 500 that is not XML is a plain server error page.
  const isXml = /\bxml\b/i.test(String(res.headers['content-type'] ?? ''));
  if (res.status === 500 && !isXml) throw new GatewayError('UPSTREAM_UNAVAILABLE', 'justice: HTTP 500');
  if (res.status !== 200 && res.status !== 500) throw new GatewayError('UPSTREAM_BAD_RESPONSE', `justice: HTTP ${res.status}`);
  if (!isXml) throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'justice: answer is not XML');
  const reading = readEnvelope(typeof res.data === 'string' ? res.data : '', parser);
  if (!reading.ok) {
    if (reading.reason === 'declaration') throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'justice: answer carries a DTD; refused');
    throw new GatewayError(res.status === 500 ? 'UPSTREAM_UNAVAILABLE' : 'UPSTREAM_BAD_RESPONSE', `justice: ${reading.reason} answer (HTTP ${res.status})`);
  }
  if (reading.element === 'Fault') throw faultError(reading.content);
  if (res.status === 500) throw new GatewayError('UPSTREAM_UNAVAILABLE', 'justice: HTTP 500 without a fault');
  if (reading.element !== `${operation}Response`) throw new GatewayError('UPSTREAM_BAD_RESPONSE', `justice: unexpected ${reading.element}`);
  return { ...mapRegistrations(query, reading.content), retrievedAt: new Date().toISOString() };
}

export interface JusticeAdapterOptions { baseUrl: string; resilience: ResilienceConfig; observer?: UpstreamObserver }

/** The secured-transactions registry (SOAP 1.1) behind the standard justice.secured-transactions contract. */
export function createJusticeAdapter(options: JusticeAdapterOptions): JusticeAdapter {
  requireOption('justice', 'baseUrl', typeof options?.baseUrl === 'string' && /^https?:\/\//.test(options.baseUrl));
  requireOption('justice', 'resilience', typeof options.resilience?.timeoutMs === 'number');
  const client = createUpstreamClient({ agency: 'justice', baseUrl: options.baseUrl, resilience: options.resilience, observer: options.observer });
  return {
    name: 'justice',
    findRegistrations(query, trace) {
      const { operation, content } = operationFor(query);
      return client.call({
        operation,
        idempotent: true,
        trace,
        request: {
          method: 'POST',
          url: SOAP_PATH,
          data: buildEnvelope(operation, content),
          headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: `"${operation}"`, Accept: 'text/xml' },
          responseType: 'text',
          // Keep the raw text: axios would otherwise try JSON.parse on it.
          transformResponse: [(data: unknown) => data],
          maxContentLength: 2_000_000,
        },
        acceptStatus: (status) => status === 500,
        interpret: (res) => interpretAnswer(operation, query, res),
        referenceOf: (r) => r.reference,
      });
    },
    async health() {
      return { up: await client.probe(STATUS_PATH), breaker: client.breakerState() };
    },
    breakerState: client.breakerState,
  };
}
