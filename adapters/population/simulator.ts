import express, { type Express } from 'express';
import { world, type WorldAddress, type WorldCitizen } from '../world/index.ts';
import { faultInjector, type SimulatorFaults } from '../shared/simulator-faults.ts';

/**
 * A simulator of the National Population Database (Cơ sở dữ liệu quốc gia về dân cư) speaking its
 * own JSON: Vietnamese member names, dd/mm/yyyy dates, result codes `maKetQua` and its own error
 * shape `{maLoi, moTa}`.
 *
 *   POST /api/v1/cong-dan/tra-cuu  {"soDinhDanh": "..."}   → 200 {maKetQua: "00", maTraCuu, duLieu}
 *                                                           → 404 {maLoi: "CD404", moTa}
 *   GET  /api/v1/trang-thai                                 → 200 {trangThai: "HOAT_DONG"}
 */
export function createPopulationSimulator(faults: SimulatorFaults = {}): Express {
  const byId = new Map(world().citizens.map((c) => [c.personalId, c]));
  const app = express();
  app.disable('x-powered-by');
  app.get('/api/v1/trang-thai', (_req, res) => { res.json({ trangThai: 'HOAT_DONG' }); });
  app.use(faultInjector(faults, (res) => { res.status(503).json({ maLoi: 'HT503', moTa: 'Hệ thống đang bảo trì' }); }, (req) => req.path === '/api/v1/trang-thai'));
  app.use(express.json({ limit: '16kb' }));
  let lookups = 0;
  app.post('/api/v1/cong-dan/tra-cuu', (req, res) => {
    const id = req.body?.soDinhDanh;
    if (typeof id !== 'string' || !/^\d{12}$/.test(id)) {
      res.status(400).json({ maLoi: 'CD400', moTa: 'Số định danh không hợp lệ' });
      return;
    }
    const c = byId.get(id);
    if (!c) {
      res.status(404).json({ maLoi: 'CD404', moTa: 'Không tìm thấy công dân' });
      return;
    }
    lookups++;
    res.json({ maKetQua: '00', thongDiep: 'Thành công', maTraCuu: `TC${String(lookups).padStart(10, '0')}`, duLieu: toNative(c, byId) });
  });
  return app;
}

const ddmmyyyy = (iso: string) => `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;
const nativeAddress = (a: WorldAddress) => ({ chiTiet: a.street, xaPhuong: a.commune, quanHuyen: a.district, tinhThanhPho: a.province });
const relative = (id: string | undefined, byId: Map<string, WorldCitizen>) => {
  const r = id ? byId.get(id) : undefined;
  return r ? { soDinhDanh: r.personalId, hoVaTen: r.fullName } : null;
};

function toNative(c: WorldCitizen, byId: Map<string, WorldCitizen>) {
  return {
    soDinhDanh: c.personalId,
    hoVaTen: c.fullName,
    ngaySinh: ddmmyyyy(c.dateOfBirth),
    gioiTinh: c.sex === 'male' ? 'Nam' : 'Nữ',
    quocTich: c.nationality,
    danToc: c.ethnicity,
    queQuan: c.hometown,
    noiThuongTru: nativeAddress(c.permanentAddress),
    noiOHienTai: nativeAddress(c.currentAddress),
    tinhTrang: c.lifeStatus === 'alive' ? 'CON_SONG' : 'DA_CHET',
    ngayMat: c.dateOfDeath ? ddmmyyyy(c.dateOfDeath) : null,
    cha: relative(c.fatherId, byId),
    me: relative(c.motherId, byId),
    voChong: relative(c.spouseId, byId),
  };
}
