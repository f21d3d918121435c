import type { AxiosResponse } from 'axios';
import { GatewayError } from '../../gateway/errors.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';
import type { ResilienceConfig } from '../../gateway/config/types.ts';
import { createUpstreamClient, type UpstreamObserver, type BreakerState, type UpstreamClient, type CallOptions } from '../shared/upstream-client.ts';
import { isoFromDmy, nativeShape, requireOption } from '../shared/native.ts';
import { sameParcel, type ParcelRef } from '../../gateway/domain/index.ts';

export type ObligationKind = 'land_use_levy' | 'land_rent' | 'registration_fee' | 'personal_income_tax';
export type { ParcelRef };
export interface TaxSource { agency: 'tax'; retrievedAt: string; reference: string }

/** One obligation of the standard contract tax.obligations v1. */
export interface Obligation {
  noticeNumber: string;
  kind: ObligationKind;
  taxCode: string;
  parcel: ParcelRef;
  amount: number;
  issuedAt: string;
  dueDate: string;
  paid: boolean;
  paidAt?: string;
}
/** The standard answer of tax.obligations v1 (before minimisation); an empty list is "no data". */
export interface ObligationsAnswer {
  obligations: Obligation[];
  summary: { outstandingAmount: number; outstandingCount: number };
  source: TaxSource;
}
/** At least one of the two; with both, obligations matching both. */
export interface ObligationsQuery { taxCode?: string; parcel?: ParcelRef }

/** The land office's information transfer sheet (request of tax.land-transfer-declaration v1). */
export interface TransferSheet {
  dossierCode: string;
  transferor: { personalId: string; fullName: string };
  transferee: { personalId: string; fullName: string };
  parcel: ParcelRef;
  certificateSerial?: string;
  declaredPrice: number;
  contractDate: string;
}
export interface AssessedObligation { kind: 'registration_fee' | 'personal_income_tax'; base: number; rate: number; amount: number; dueDate: string; taxCode: string }
/** The standard answer of tax.land-transfer-declaration v1. */
export interface Declaration {
  noticeNumber: string;
  filedAt: string;
  obligations: AssessedObligation[];
  source: TaxSource;
}

export interface TaxAdapter {
  readonly name: 'tax';
  /** Obligations of a taxpayer and/or on a parcel; an empty list when the tax authority has none. */
  getObligations(query: ObligationsQuery, trace?: UpstreamCall[]): Promise<ObligationsAnswer>;
  /**
   * Files a transfer declaration under `idempotencyKey` (sent as the upstream's `ma_tham_chieu`,
   * which it never files twice). Never retried blindly. When an earlier filing under the key timed
   * out here, or `options.uncertain` says so, the reference is looked up first.
   */
  fileTransferDeclaration(sheet: TransferSheet, idempotencyKey: string, trace?: UpstreamCall[], options?: { uncertain?: boolean }): Promise<Declaration>;
  /** The declaration filed under `idempotencyKey`, or null when none was. */
  findDeclaration(idempotencyKey: string, trace?: UpstreamCall[]): Promise<Declaration | null>;
  health(): Promise<{ up: boolean; breaker: BreakerState }>;
  breakerState(): BreakerState;
}

export interface TaxAdapterOptions {
  baseUrl: string;
  resilience: ResilienceConfig;
  clientId: string;
  clientSecret: string;
  observer?: UpstreamObserver;
}

const NATIVE_KINDS: Record<string, ObligationKind> = {
  TIEN_SU_DUNG_DAT: 'land_use_levy',
  TIEN_THUE_DAT: 'land_rent',
  LE_PHI_TRUOC_BA: 'registration_fee',
  THUE_TNCN: 'personal_income_tax',
};
/** A token is renewed this long before the upstream says it expires, so it never dies in flight. */
const EXPIRY_MARGIN_MS = 30_000;
/** Keys whose filing timed out, remembered so a repeat looks up first; bounded, the durable record is the gateway's store. */
const MAX_UNCERTAIN_KEYS = 10_000;
const HEALTH_PATH = '/tct/api/trang-thai';

interface NativeParcel { ma_xa: string; to_ban_do: number; thua_so: number }
interface NativeObligation {
  so_thong_bao: string; loai: string; mst: string; thua_dat: NativeParcel; so_tien: number;
  ngay_thong_bao: string; han_nop: string; trang_thai: 'DA_NOP' | 'CHUA_NOP'; ngay_nop?: string | null;
}
interface NativeObligations { ma_loi: '00'; ma_giao_dich: string; danh_sach: NativeObligation[] }
interface NativeItem { loai: 'LE_PHI_TRUOC_BA' | 'THUE_TNCN'; can_cu_tinh: number; ty_le: number; so_tien: number; han_nop: string; mst: string }
interface NativeDeclaration { ma_loi: '00'; ma_giao_dich: string; to_khai: { ma_tham_chieu: string | null; so_thong_bao: string; thoi_diem_nop: string; cac_khoan: NativeItem[] } }
interface NativeToken { access_token: string; token_type: string; expires_in: number }

const text = { type: 'string', minLength: 1 };
const money = { type: 'integer', minimum: 0 };
const nativeParcel = {
  type: 'object', required: ['ma_xa', 'to_ban_do', 'thua_so'],
  properties: { ma_xa: { type: 'string', pattern: '^[0-9]{5}$' }, to_ban_do: { type: 'integer', minimum: 1 }, thua_so: { type: 'integer', minimum: 1 } },
};
const checkObligations = nativeShape<NativeObligations>('tax', {
  type: 'object',
  required: ['ma_loi', 'ma_giao_dich', 'danh_sach'],
  properties: {
    ma_loi: { const: '00' },
    ma_giao_dich: text,
    danh_sach: {
      type: 'array',
      items: {
        type: 'object',
        required: ['so_thong_bao', 'loai', 'mst', 'thua_dat', 'so_tien', 'ngay_thong_bao', 'han_nop', 'trang_thai'],
        properties: {
          so_thong_bao: text, loai: { enum: Object.keys(NATIVE_KINDS) }, mst: { type: 'string', pattern: '^([0-9]{10}(-[0-9]{3})?|[0-9]{12})$' },
          thua_dat: nativeParcel, so_tien: money, ngay_thong_bao: text, han_nop: text, trang_thai: { enum: ['DA_NOP', 'CHUA_NOP'] }, ngay_nop: { type: ['string', 'null'] },
        },
      },
    },
  },
});
const checkDeclaration = nativeShape<NativeDeclaration>('tax', {
  type: 'object',
  required: ['ma_loi', 'ma_giao_dich', 'to_khai'],
  properties: {
    ma_loi: { const: '00' },
    ma_giao_dich: text,
    to_khai: {
      type: 'object',
      required: ['ma_tham_chieu', 'so_thong_bao', 'thoi_diem_nop', 'cac_khoan'],
      properties: {
        ma_tham_chieu: { type: ['string', 'null'] }, so_thong_bao: text, thoi_diem_nop: text,
        cac_khoan: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            required: ['loai', 'can_cu_tinh', 'ty_le', 'so_tien', 'han_nop', 'mst'],
            properties: {
              loai: { enum: ['LE_PHI_TRUOC_BA', 'THUE_TNCN'] }, can_cu_tinh: money, ty_le: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
              so_tien: money, han_nop: text, mst: { type: 'string', pattern: '^[0-9]{12}$' },
            },
          },
        },
      },
    },
  },
});
const checkToken = nativeShape<NativeToken>('tax', {
  type: 'object',
  required: ['access_token', 'token_type', 'expires_in'],
  properties: { access_token: text, token_type: { type: 'string', pattern: '^[Bb][Ee][Aa][Rr][Ee][Rr]$' }, expires_in: { type: 'integer', minimum: 1 } },
});

const toParcel = (p: NativeParcel): ParcelRef => ({ communeCode: p.ma_xa, mapSheet: p.to_ban_do, parcelNumber: p.thua_so });
const dmy = (iso: string) => `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;

function toObligation(o: NativeObligation): Obligation {
  const paid = o.trang_thai === 'DA_NOP';
  const obligation: Obligation = {
    noticeNumber: o.so_thong_bao, kind: NATIVE_KINDS[o.loai]!, taxCode: o.mst, parcel: toParcel(o.thua_dat), amount: o.so_tien,
    issuedAt: isoFromDmy('tax', o.ngay_thong_bao), dueDate: isoFromDmy('tax', o.han_nop), paid,
  };
  if (paid && o.ngay_nop) obligation.paidAt = isoFromDmy('tax', o.ngay_nop);
  return obligation;
}

/** Maps the tax authority's list to the standard answer; an answer about another taxpayer or parcel is UPSTREAM_BAD_RESPONSE. */
export function mapObligations(query: ObligationsQuery, body: unknown, retrievedAt: string): ObligationsAnswer {
  const native = checkObligations(body);
  const obligations = native.danh_sach.map(toObligation);
  if (obligations.some((o) => (query.taxCode && o.taxCode !== query.taxCode) || (query.parcel && !sameParcel(o.parcel, query.parcel)))) {
    throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'tax: answered about another taxpayer or parcel');
  }
  const unpaid = obligations.filter((o) => !o.paid);
  return {
    obligations,
    summary: { outstandingAmount: unpaid.reduce((sum, o) => sum + o.amount, 0), outstandingCount: unpaid.length },
    source: { agency: 'tax', retrievedAt, reference: native.ma_giao_dich },
  };
}

/** Maps a filed declaration; one filed under another reference is UPSTREAM_BAD_RESPONSE. */
export function mapDeclaration(reference: string, body: unknown, retrievedAt: string): Declaration {
  const { to_khai: d, ma_giao_dich } = checkDeclaration(body);
  if (d.ma_tham_chieu !== reference) throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'tax: answered about another declaration');
  const filedAt = new Date(d.thoi_diem_nop);
  if (Number.isNaN(filedAt.getTime())) throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'tax: bad filing time');
  return {
    noticeNumber: d.so_thong_bao,
    filedAt: filedAt.toISOString(),
    obligations: d.cac_khoan.map((i) => ({
      kind: i.loai === 'LE_PHI_TRUOC_BA' ? 'registration_fee' : 'personal_income_tax',
      base: i.can_cu_tinh, rate: i.ty_le, amount: i.so_tien, dueDate: isoFromDmy('tax', i.han_nop), taxCode: i.mst,
    })),
    source: { agency: 'tax', retrievedAt, reference: ma_giao_dich },
  };
}

function toNativeSheet(sheet: TransferSheet, reference: string) {
  const party = (p: { personalId: string; fullName: string }) => ({ so_dinh_danh: p.personalId, ho_ten: p.fullName.normalize('NFC') });
  return {
    ma_tham_chieu: reference,
    ma_ho_so: sheet.dossierCode,
    ben_chuyen_nhuong: party(sheet.transferor),
    ben_nhan_chuyen_nhuong: party(sheet.transferee),
    thua_dat: { ma_xa: sheet.parcel.communeCode, to_ban_do: sheet.parcel.mapSheet, thua_so: sheet.parcel.parcelNumber },
    so_phat_hanh_gcn: sheet.certificateSerial ?? null,
    gia_chuyen_nhuong: sheet.declaredPrice,
    ngay_hop_dong: dmy(sheet.contractDate),
  };
}

/** Marks a 401 on a protected call: the token is refreshed once and the call repeated once. */
class TokenRejected extends Error {
  constructor(readonly token: string) { super('tax: access token rejected'); }
}

/**
 * OAuth2 client-credentials tokens (RFC 6749 §4.4): one fetch shared by concurrent callers, cached
 * until shortly before `expires_in`, dropped when the upstream rejects it.
 */
function createTokenSource(client: UpstreamClient, clientId: string, clientSecret: string) {
  let cached: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');

  const fetchToken = (trace?: UpstreamCall[]) => client.call({
    operation: 'oauth2/token',
    idempotent: true,
    trace,
    request: {
      method: 'POST', url: '/oauth2/token',
      headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      data: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
    },
    interpret: (res) => {
      if (res.status === 400 || res.status === 401) throw new GatewayError('UPSTREAM_UNAVAILABLE', `tax: client credentials refused (HTTP ${res.status})`);
      if (res.status !== 200) throw new GatewayError('UPSTREAM_BAD_RESPONSE', `tax: token endpoint HTTP ${res.status}`);
      const t = checkToken(res.data);
      const lifetimeMs = t.expires_in * 1000;
      cached = { token: t.access_token, renewAt: Date.now() + lifetimeMs - Math.min(EXPIRY_MARGIN_MS, lifetimeMs / 10) };
      return t.access_token;
    },
  });

  return {
    /** The cached token, or a fresh one; the caller that starts a fetch has it in its audit trace. */
    async get(trace?: UpstreamCall[]): Promise<string> {
      if (cached && Date.now() < cached.renewAt) return cached.token;
      pending ??= fetchToken(trace).finally(() => { pending = undefined; });
      return pending;
    },
    /** Forgets a rejected token, unless a concurrent caller already replaced it. */
    drop(token: string) {
      if (cached?.token === token) cached = undefined;
    },
  };
}

/** The tax authority behind the standard obligations and declaration contracts. */
export function createTaxAdapter(options: TaxAdapterOptions): TaxAdapter {
  requireOption('tax', 'baseUrl', typeof options?.baseUrl === 'string' && /^https?:\/\//.test(options.baseUrl));
  requireOption('tax', 'resilience', typeof options.resilience?.timeoutMs === 'number');
  requireOption('tax', 'clientId', typeof options.clientId === 'string' && options.clientId.length > 0);
  requireOption('tax', 'clientSecret', typeof options.clientSecret === 'string' && options.clientSecret.length > 0);
  const client = createUpstreamClient({ agency: 'tax', baseUrl: options.baseUrl, resilience: options.resilience, observer: options.observer, headers: { Accept: 'application/json' } });
  const tokens = createTokenSource(client, options.clientId, options.clientSecret);
  const uncertainKeys = new Set<string>();

  /** One protected call with the cached token; on a 401, one fresh token and one repeat (a 401 means nothing was done). */
  async function authorized<T>(call: CallOptions<T>): Promise<T> {
    const once = async () => {
      const token = await tokens.get(call.trace);
      return client.call({
        ...call,
        request: { ...call.request, headers: { ...call.request.headers, Authorization: `Bearer ${token}` } },
        interpret: (res) => {
          if (res.status === 401) throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'tax: access token rejected', { cause: new TokenRejected(token) });
          return call.interpret(res);
        },
      });
    };
    try {
      return await once();
    } catch (e) {
      const rejected = (e as { cause?: unknown })?.cause;
      if (!(rejected instanceof TokenRejected)) throw e;
      tokens.drop(rejected.token);
    }
    try {
      return await once();
    } catch (e) {
      if ((e as { cause?: unknown })?.cause instanceof TokenRejected) throw new GatewayError('UPSTREAM_UNAVAILABLE', 'tax: fresh access token rejected too', { cause: e });
      throw e;
    }
  }

  const refusedAs = (res: AxiosResponse, what: string) => new GatewayError('UPSTREAM_BAD_RESPONSE', `tax: ${what} refused (HTTP ${res.status})`);

  function findDeclaration(idempotencyKey: string, trace?: UpstreamCall[]): Promise<Declaration | null> {
    return authorized({
      operation: 'to-khai-chuyen-nhuong/tra-cuu',
      idempotent: true,
      trace,
      request: { method: 'GET', url: '/tct/api/to-khai-chuyen-nhuong', params: { ma_tham_chieu: idempotencyKey } },
      interpret: (res) => {
        if (res.status === 404) return null;
        if (res.status !== 200) throw refusedAs(res, 'declaration look-up');
        return mapDeclaration(idempotencyKey, res.data, new Date().toISOString());
      },
      referenceOf: (d) => d?.source.reference ?? null,
    });
  }

  function remember(key: string) {
    if (uncertainKeys.size >= MAX_UNCERTAIN_KEYS) uncertainKeys.delete(uncertainKeys.values().next().value!);
    uncertainKeys.add(key);
  }

  async function fileOnce(sheet: TransferSheet, idempotencyKey: string, trace?: UpstreamCall[]): Promise<Declaration> {
    try {
      return await authorized({
        operation: 'to-khai-chuyen-nhuong',
        idempotent: false,
        trace,
        request: { method: 'POST', url: '/tct/api/to-khai-chuyen-nhuong', data: toNativeSheet(sheet, idempotencyKey) },
        interpret: (res) => {
          if (res.status === 409) throw new GatewayError('IDEMPOTENCY_KEY_REUSED', 'the tax authority holds another declaration under this key');
          if (res.status === 400) throw new GatewayError('REQUEST_INVALID', 'the tax authority refused the declaration');
          if (res.status !== 200 && res.status !== 201) throw refusedAs(res, 'declaration');
          return mapDeclaration(idempotencyKey, res.data, new Date().toISOString());
        },
        referenceOf: (d) => d.source.reference,
      });
    } catch (e) {
      // Whether a timed-out or garbled write was filed is unknown until the reference is looked up.
      if (e instanceof GatewayError && (e.code === 'UPSTREAM_TIMEOUT' || e.code === 'UPSTREAM_BAD_RESPONSE')) remember(idempotencyKey);
      throw e;
    }
  }

  return {
    name: 'tax',
    getObligations(query, trace) {
      const params: Record<string, string | number> = {};
      if (query.taxCode) params.mst = query.taxCode;
      if (query.parcel) Object.assign(params, { ma_xa: query.parcel.communeCode, to_ban_do: query.parcel.mapSheet, thua_so: query.parcel.parcelNumber });
      return authorized({
        operation: 'nghia-vu-tai-chinh',
        idempotent: true,
        trace,
        request: { method: 'GET', url: '/tct/api/nghia-vu-tai-chinh', params },
        interpret: (res) => {
          if (res.status !== 200) throw refusedAs(res, 'obligations query');
          return mapObligations(query, res.data, new Date().toISOString());
        },
        referenceOf: (r) => r.source.reference,
      });
    },
    async fileTransferDeclaration(sheet, idempotencyKey, trace, fileOptions = {}) {
      if (fileOptions.uncertain || uncertainKeys.has(idempotencyKey)) {
        const earlier = await findDeclaration(idempotencyKey, trace);
        if (earlier) {
          uncertainKeys.delete(idempotencyKey);
          return earlier;
        }
      }
      const declaration = await fileOnce(sheet, idempotencyKey, trace);
      uncertainKeys.delete(idempotencyKey);
      return declaration;
    },
    findDeclaration,
    async health() {
      return { up: await client.probe(HEALTH_PATH), breaker: client.breakerState() };
    },
    breakerState: client.breakerState,
  };
}
