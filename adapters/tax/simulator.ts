import { randomBytes, timingSafeEqual } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { world, sameParcel, type ObligationKind, type WorldObligation, type WorldParcelRef } from '../world/index.ts';
import { faultInjector, type SimulatorFaults } from '../shared/simulator-faults.ts';

/** Credentials the embedded simulator accepts unless told otherwise (the adapter's defaults too). */
export const TAX_DEMO_CREDENTIALS = Object.freeze({ clientId: 'gateway', clientSecret: 'tax-demo-secret' });

export interface TaxSimulatorOptions extends SimulatorFaults {
  /** Lifetime of issued access tokens (default 3600 s); a short one stages expiry. */
  tokenTtlSeconds?: number;
  clientId?: string;
  clientSecret?: string;
}

/** What tests steer and observe besides HTTP. */
export interface TaxSimulatorControl {
  /** Declarations actually filed; a repeated `ma_tham_chieu` is not filed again, so not counted. */
  declarationsFiled(): number;
  /** Access tokens issued so far. */
  tokensIssued(): number;
  /** Invalidates every issued token, so the next call with one is answered 401. */
  revokeAllTokens(): void;
}

export type TaxSimulator = Express & { control: TaxSimulatorControl };

/** Registration fee (lệ phí trước bạ) on land: 0.5 % of the price, at most 500 million VND per asset (Decree 10/2022/NĐ-CP). */
const REGISTRATION_FEE_RATE = 0.005;
const REGISTRATION_FEE_CAP = 500_000_000;
/** Personal income tax on a transfer of real estate: 2 % of the price (Law on PIT, art. 14 and 23). */
const TRANSFER_PIT_RATE = 0.02;
const DAYS_TO_PAY = 30;
const VN_OFFSET_MS = 7 * 3600_000;
const HEALTH_PATH = '/tct/api/trang-thai';

const NATIVE_KIND: Record<ObligationKind, string> = {
  land_use_levy: 'TIEN_SU_DUNG_DAT',
  land_rent: 'TIEN_THUE_DAT',
  registration_fee: 'LE_PHI_TRUOC_BA',
  personal_income_tax: 'THUE_TNCN',
};

interface Party { so_dinh_danh: string; ho_ten: string }
interface Sheet {
  ma_ho_so: string;
  ben_chuyen_nhuong: Party;
  ben_nhan_chuyen_nhuong: Party;
  thua_dat: { ma_xa: string; to_ban_do: number; thua_so: number };
  so_phat_hanh_gcn: string | null;
  gia_chuyen_nhuong: number;
  ngay_hop_dong: string;
}
interface Filing { sheet: Sheet; declaration: Record<string, unknown> }

/**
 * A simulator of the tax authority (Tổng cục Thuế) speaking its own REST JSON behind OAuth2
 * client credentials (RFC 6749 §4.4): snake_case Vietnamese member names, dd/mm/yyyy dates,
 * errors as `{ma_loi, thong_bao}`.
 *
 *   POST /oauth2/token                      grant_type=client_credentials (Basic or body credentials)
 *   GET  /tct/api/nghia-vu-tai-chinh        ?mst=… and/or ?ma_xa=…&to_ban_do=…&thua_so=…
 *   POST /tct/api/to-khai-chuyen-nhuong     files a transfer declaration; honours `ma_tham_chieu`
 *   GET  /tct/api/to-khai-chuyen-nhuong     ?ma_tham_chieu=… → the declaration filed under it, or 404
 *   GET  /tct/api/trang-thai                health, no token needed
 */
export function createTaxSimulator(options: TaxSimulatorOptions = {}): TaxSimulator {
  const credentials = { clientId: options.clientId ?? TAX_DEMO_CREDENTIALS.clientId, clientSecret: options.clientSecret ?? TAX_DEMO_CREDENTIALS.clientSecret };
  const ttlSeconds = options.tokenTtlSeconds ?? 3600;
  const tokens = new Map<string, number>();
  const obligations: WorldObligation[] = [...world().obligations];
  const filings = new Map<string, Filing>();
  let filed = 0;
  let issued = 0;
  let answers = 0;
  const nextAnswerId = () => `GD${String(++answers).padStart(12, '0')}`;

  const app = express();
  app.disable('x-powered-by');
  app.get(HEALTH_PATH, (_req, res) => { res.json({ trang_thai: 'HOAT_DONG' }); });
  app.use(faultInjector(options, (res) => { res.status(503).json({ ma_loi: 'E503', thong_bao: 'Hệ thống đang bận, vui lòng thử lại sau' }); }, (req) => req.path === HEALTH_PATH));

  app.post('/oauth2/token', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    res.set('Cache-Control', 'no-store');
    const presented = presentedCredentials(req);
    if (!presented) {
      res.status(400).json({ error: 'invalid_request', error_description: 'send client credentials once: Basic or in the body' });
      return;
    }
    if (req.body?.grant_type !== 'client_credentials') {
      res.status(400).json({ error: 'unsupported_grant_type' });
      return;
    }
    if (!sameSecret(presented.id, credentials.clientId) || !sameSecret(presented.secret, credentials.clientSecret)) {
      res.status(401).set('WWW-Authenticate', 'Basic realm="tct"').json({ error: 'invalid_client' });
      return;
    }
    const now = Date.now();
    for (const [t, exp] of tokens) if (exp <= now) tokens.delete(t);
    const token = randomBytes(32).toString('base64url');
    tokens.set(token, now + ttlSeconds * 1000);
    issued++;
    res.json({ access_token: token, token_type: 'Bearer', expires_in: ttlSeconds, scope: 'nghia-vu-tai-chinh to-khai' });
  });

  app.use('/tct/api', (req: Request, res: Response, next: NextFunction) => {
    const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.get('authorization') ?? '');
    const exp = m ? tokens.get(m[1]!) : undefined;
    if (exp === undefined || exp <= Date.now()) {
      res.status(401).set('WWW-Authenticate', 'Bearer error="invalid_token"').json({ error: 'invalid_token', error_description: 'token missing, expired or revoked' });
      return;
    }
    next();
  });
  app.use(express.json({ limit: '16kb' }));

  app.get('/tct/api/nghia-vu-tai-chinh', (req, res) => {
    const query = obligationQuery(req.query);
    if (!query) {
      res.status(400).json({ ma_loi: 'E400', thong_bao: 'Cần mã số thuế hợp lệ hoặc đủ mã xã, tờ bản đồ, thửa đất' });
      return;
    }
    const found = obligations.filter((o) => (!query.mst || o.taxCode === query.mst) && (!query.parcel || sameParcel(o.parcel, query.parcel)));
    res.json({ ma_loi: '00', thong_bao: 'Thành công', ma_giao_dich: nextAnswerId(), tong_so: found.length, danh_sach: found.map(nativeObligation) });
  });

  app.post('/tct/api/to-khai-chuyen-nhuong', (req, res) => {
    const sheet = sheetOf(req.body);
    const reference = req.body?.ma_tham_chieu;
    if (!sheet || (reference !== undefined && !validReference(reference))) {
      res.status(400).json({ ma_loi: 'E400', thong_bao: 'Tờ khai không hợp lệ' });
      return;
    }
    const earlier = reference !== undefined ? filings.get(reference) : undefined;
    if (earlier) {
      // The same reference is never filed twice: the same sheet gets the first answer back.
      if (JSON.stringify(earlier.sheet) !== JSON.stringify(sheet)) {
        res.status(409).json({ ma_loi: 'E409', thong_bao: 'Mã tham chiếu đã dùng cho tờ khai khác' });
        return;
      }
      res.status(200).json({ ma_loi: '00', thong_bao: 'Tờ khai đã được tiếp nhận trước đó', ma_giao_dich: nextAnswerId(), to_khai: earlier.declaration });
      return;
    }
    const declaration = file(sheet, reference ?? null);
    if (reference !== undefined) filings.set(reference, { sheet, declaration });
    res.status(201).json({ ma_loi: '00', thong_bao: 'Đã tiếp nhận tờ khai', ma_giao_dich: nextAnswerId(), to_khai: declaration });
  });

  app.get('/tct/api/to-khai-chuyen-nhuong', (req, res) => {
    const reference = req.query.ma_tham_chieu;
    if (!validReference(reference)) {
      res.status(400).json({ ma_loi: 'E400', thong_bao: 'Mã tham chiếu không hợp lệ' });
      return;
    }
    const filing = filings.get(reference);
    if (!filing) {
      res.status(404).json({ ma_loi: 'E404', thong_bao: 'Không có tờ khai với mã tham chiếu này' });
      return;
    }
    res.json({ ma_loi: '00', thong_bao: 'Thành công', ma_giao_dich: nextAnswerId(), to_khai: filing.declaration });
  });

  /** Assesses the sheet, records the new obligations (so a later look-up shows them) and builds the notice. */
  function file(sheet: Sheet, reference: string | null): Record<string, unknown> {
    filed++;
    const now = Date.now();
    const local = new Date(now + VN_OFFSET_MS).toISOString();
    const today = local.slice(0, 10);
    const due = new Date(now + VN_OFFSET_MS + DAYS_TO_PAY * 86_400_000).toISOString().slice(0, 10);
    const noticeNumber = `TB-${today.slice(0, 4)}-${String(100000 + filed).padStart(6, '0')}`;
    const price = sheet.gia_chuyen_nhuong;
    const items = [
      { kind: 'registration_fee' as const, rate: REGISTRATION_FEE_RATE, amount: Math.min(Math.round(price * REGISTRATION_FEE_RATE), REGISTRATION_FEE_CAP), payer: sheet.ben_nhan_chuyen_nhuong },
      { kind: 'personal_income_tax' as const, rate: TRANSFER_PIT_RATE, amount: Math.round(price * TRANSFER_PIT_RATE), payer: sheet.ben_chuyen_nhuong },
    ];
    const parcel: WorldParcelRef = { communeCode: sheet.thua_dat.ma_xa, mapSheet: sheet.thua_dat.to_ban_do, parcelNumber: sheet.thua_dat.thua_so };
    for (const item of items) {
      obligations.push({ noticeNumber, kind: item.kind, taxCode: item.payer.so_dinh_danh, parcel, amount: item.amount, issuedAt: today, dueDate: due, paid: false });
    }
    return {
      ma_tham_chieu: reference,
      so_thong_bao: noticeNumber,
      thoi_diem_nop: `${local.slice(0, 19)}+07:00`,
      ma_ho_so: sheet.ma_ho_so,
      cac_khoan: items.map((i) => ({ loai: NATIVE_KIND[i.kind], can_cu_tinh: price, ty_le: i.rate, so_tien: i.amount, han_nop: dmy(due), mst: i.payer.so_dinh_danh })),
    };
  }

  const control: TaxSimulatorControl = {
    declarationsFiled: () => filed,
    tokensIssued: () => issued,
    revokeAllTokens: () => tokens.clear(),
  };
  return Object.assign(app, { control });
}

const dmy = (iso: string) => `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;
const MST = /^(\d{10}(-\d{3})?|\d{12})$/;
const validReference = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9._:-]{1,200}$/.test(v);

function nativeObligation(o: WorldObligation) {
  return {
    so_thong_bao: o.noticeNumber,
    loai: NATIVE_KIND[o.kind],
    mst: o.taxCode,
    thua_dat: { ma_xa: o.parcel.communeCode, to_ban_do: o.parcel.mapSheet, thua_so: o.parcel.parcelNumber },
    so_tien: o.amount,
    ngay_thong_bao: dmy(o.issuedAt),
    han_nop: dmy(o.dueDate),
    trang_thai: o.paid ? 'DA_NOP' : 'CHUA_NOP',
    ngay_nop: o.paidAt ? dmy(o.paidAt) : null,
  };
}

/** `?mst=` and/or a whole parcel; anything partial or malformed is refused. */
function obligationQuery(q: Record<string, unknown>): { mst?: string; parcel?: WorldParcelRef } | null {
  const { mst, ma_xa, to_ban_do, thua_so } = q;
  const anyParcel = ma_xa !== undefined || to_ban_do !== undefined || thua_so !== undefined;
  if (mst !== undefined && !(typeof mst === 'string' && MST.test(mst))) return null;
  if (!anyParcel) return typeof mst === 'string' ? { mst } : null;
  const sheet = Number(to_ban_do), number = Number(thua_so);
  if (typeof ma_xa !== 'string' || !/^\d{5}$/.test(ma_xa) || !Number.isInteger(sheet) || sheet < 1 || !Number.isInteger(number) || number < 1) return null;
  return { ...(typeof mst === 'string' ? { mst } : {}), parcel: { communeCode: ma_xa, mapSheet: sheet, parcelNumber: number } };
}

/** The transfer sheet in a fixed member order (so two filings compare by their JSON), or null when malformed. */
function sheetOf(body: any): Sheet | null {
  const party = (p: any): Party | null =>
    p && typeof p.so_dinh_danh === 'string' && /^\d{12}$/.test(p.so_dinh_danh) && typeof p.ho_ten === 'string' && p.ho_ten.length > 0
      ? { so_dinh_danh: p.so_dinh_danh, ho_ten: p.ho_ten.normalize('NFC') }
      : null;
  if (!body || typeof body !== 'object') return null;
  const from = party(body.ben_chuyen_nhuong), to = party(body.ben_nhan_chuyen_nhuong);
  const t = body.thua_dat;
  const parcelOk = t && typeof t.ma_xa === 'string' && /^\d{5}$/.test(t.ma_xa) && Number.isInteger(t.to_ban_do) && t.to_ban_do > 0 && Number.isInteger(t.thua_so) && t.thua_so > 0;
  const priceOk = Number.isSafeInteger(body.gia_chuyen_nhuong) && body.gia_chuyen_nhuong > 0;
  const dateOk = typeof body.ngay_hop_dong === 'string' && /^\d{2}\/\d{2}\/\d{4}$/.test(body.ngay_hop_dong);
  const serialOk = body.so_phat_hanh_gcn === undefined || body.so_phat_hanh_gcn === null || typeof body.so_phat_hanh_gcn === 'string';
  if (!from || !to || !parcelOk || !priceOk || !dateOk || !serialOk || typeof body.ma_ho_so !== 'string' || body.ma_ho_so.length === 0) return null;
  return {
    ma_ho_so: body.ma_ho_so,
    ben_chuyen_nhuong: from,
    ben_nhan_chuyen_nhuong: to,
    thua_dat: { ma_xa: t.ma_xa, to_ban_do: t.to_ban_do, thua_so: t.thua_so },
    so_phat_hanh_gcn: body.so_phat_hanh_gcn ?? null,
    gia_chuyen_nhuong: body.gia_chuyen_nhuong,
    ngay_hop_dong: body.ngay_hop_dong,
  };
}

/** Client credentials from exactly one place: HTTP Basic (form-urlencoded parts, RFC 6749 §2.3.1) or the body. */
function presentedCredentials(req: Request): { id: string; secret: string } | null {
  const basic = /^Basic ([A-Za-z0-9+/]+=*)$/.exec(req.get('authorization') ?? '');
  const inBody = typeof req.body?.client_id === 'string' || typeof req.body?.client_secret === 'string';
  if (basic && inBody) return null;
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    try {
      return { id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')), secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')) };
    } catch {
      return null;
    }
  }
  if (typeof req.body?.client_id === 'string' && typeof req.body?.client_secret === 'string') return { id: req.body.client_id, secret: req.body.client_secret };
  return null;
}

function sameSecret(presented: string, expected: string): boolean {
  const a = Buffer.from(presented), b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
