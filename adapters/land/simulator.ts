import express, { type Express, type Response } from 'express';
import { world, type WorldParcel } from '../world/index.ts';
import { faultInjector, type SimulatorFaults } from '../shared/simulator-faults.ts';

/** Small on purpose, so that an owner of several parcels already needs more than one page. */
export const DEFAULT_PAGE_SIZE = 2;
const MAX_PAGE_SIZE = 50;
const HEALTH_PATH = '/registry/v2/health';

/**
 * A simulator of the provincial land registry (hệ thống thông tin đất đai) speaking its own REST
 * JSON: snake_case Vietnamese member names, shares in percent, paged lists, and its own error
 * shape `{loi: {ma, thong_bao}}`.
 *
 *   GET /registry/v2/parcels?owner_id=&page=&page_size=      → 200 {items, page, page_size, total, next_page, ma_yeu_cau}
 *   GET /registry/v2/certificates/{so_phat_hanh}/parcel      → 200 {thua_dat, ma_yeu_cau} | 404 {loi}
 *   GET /registry/v2/parcels/{ma_xa}/{so_to}/{so_thua}        → 200 {thua_dat, ma_yeu_cau} | 404 {loi}
 *   GET /registry/v2/health                                  → 200 {trang_thai: "UP"}
 */
export function createLandSimulator(faults: SimulatorFaults = {}): Express {
  const parcels = world().parcels;
  const bySerial = new Map(parcels.map((p) => [p.certificate.serial, p]));
  const byRef = new Map(parcels.map((p) => [refKey(p.communeCode, p.mapSheet, p.parcelNumber), p]));
  let answers = 0;
  const reference = () => `DD${String(++answers).padStart(10, '0')}`;

  const app = express();
  app.disable('x-powered-by');
  app.get(HEALTH_PATH, (_req, res) => { res.json({ trang_thai: 'UP' }); });
  app.use(faultInjector(faults, (res) => fail(res, 503, 'HE_THONG_BAN', 'Hệ thống đang bảo trì'), (req) => req.path === HEALTH_PATH));

  app.get('/registry/v2/parcels', (req, res) => {
    const ownerId = req.query.owner_id;
    const page = positiveInt(req.query.page, 1);
    const pageSize = positiveInt(req.query.page_size, DEFAULT_PAGE_SIZE);
    if (typeof ownerId !== 'string' || !/^\d{12}$/.test(ownerId)) return fail(res, 400, 'THAM_SO_SAI', 'owner_id không hợp lệ');
    if (page === null || pageSize === null || pageSize > MAX_PAGE_SIZE) return fail(res, 400, 'THAM_SO_SAI', 'page hoặc page_size không hợp lệ');
    const owned = parcels.filter((p) => p.owners.some((o) => o.personalId === ownerId));
    const start = (page - 1) * pageSize;
    res.json({
      items: owned.slice(start, start + pageSize).map(toNative),
      page,
      page_size: pageSize,
      total: owned.length,
      next_page: start + pageSize < owned.length ? page + 1 : null,
      ma_yeu_cau: reference(),
    });
  });

  app.get('/registry/v2/certificates/:serial/parcel', (req, res) => {
    const p = bySerial.get(req.params.serial);
    if (!p) return fail(res, 404, 'KHONG_TIM_THAY', 'Không tìm thấy giấy chứng nhận');
    res.json({ thua_dat: toNative(p), ma_yeu_cau: reference() });
  });

  app.get('/registry/v2/parcels/:maXa/:soTo/:soThua', (req, res) => {
    const { maXa, soTo, soThua } = req.params;
    if (!/^\d{5}$/.test(maXa) || !/^\d{1,6}$/.test(soTo) || !/^\d{1,6}$/.test(soThua)) return fail(res, 400, 'THAM_SO_SAI', 'Số hiệu thửa đất không hợp lệ');
    const p = byRef.get(refKey(maXa, Number(soTo), Number(soThua)));
    if (!p) return fail(res, 404, 'KHONG_TIM_THAY', 'Không tìm thấy thửa đất');
    res.json({ thua_dat: toNative(p), ma_yeu_cau: reference() });
  });

  app.use((_req, res) => fail(res, 404, 'KHONG_CO_DUONG_DAN', 'Đường dẫn không tồn tại'));
  return app;
}

const refKey = (communeCode: string, mapSheet: number, parcelNumber: number) => `${communeCode}/${mapSheet}/${parcelNumber}`;

function fail(res: Response, status: number, ma: string, thongBao: string): void {
  res.status(status).json({ loi: { ma, thong_bao: thongBao } });
}

/** A query parameter as a positive integer; `fallback` when absent, null when present but invalid. */
function positiveInt(value: unknown, fallback: number): number | null {
  if (value === undefined) return fallback;
  return typeof value === 'string' && /^[1-9]\d{0,5}$/.test(value) ? Number(value) : null;
}

function toNative(p: WorldParcel) {
  return {
    ma_xa: p.communeCode,
    so_to: p.mapSheet,
    so_thua: p.parcelNumber,
    dia_chi: { so_nha_duong: p.address.street, xa_phuong: p.address.commune, quan_huyen: p.address.district, tinh_thanh: p.address.province },
    dien_tich: p.area,
    muc_dich_su_dung: p.landUse,
    thoi_han: p.term === 'long_term' ? 'LAU_DAI' : p.term,
    giay_chung_nhan: { so_phat_hanh: p.certificate.serial, so_vao_so: p.certificate.entryNumber, ngay_cap: p.certificate.issueDate },
    chu_su_dung: p.owners.map((o) => ({ so_dinh_danh: o.personalId, ho_ten: o.name, ty_le: Math.round(o.share * 10000) / 100 })),
  };
}
