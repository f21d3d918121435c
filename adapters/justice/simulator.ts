import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { sameParcel, world, type WorldParcelRef, type WorldRegistration } from '../world/index.ts';
import { faultInjector, type SimulatorFaults } from '../shared/simulator-faults.ts';
import { buildEnvelope, buildFault, createSafeParser, OPERATIONS, readEnvelope, SOAP_PATH, STATUS_PATH, type RegistryOperation } from './soap.ts';

/**
 * A simulator of the Justice department's secured-transactions registry (hệ thống đăng ký biện
 * pháp bảo đảm) speaking SOAP 1.1 with its own element names and namespace.
 *
 *   POST /soap/SecuredTransactions   Content-Type: text/xml; SOAPAction: "<operation>"
 *     TraCuuTheoGiayChungNhan {SoPhatHanh}                       by certificate serial
 *     TraCuuTheoThuaDat       {MaXaPhuong, SoToBanDo, SoThuaDat}  by parcel
 *     TraCuuTheoBenBaoDam     {SoDinhDanh}                        by grantor
 *   → 200 <operation>Response/KetQuaTraCuu {MaTraCuu, ThoiDiemTraCuu, SoLuong, DanhSachDangKy/DangKy*}
 *   → 500 soap:Client fault (bad input, DTD, wrong SOAPAction) or soap:Server fault (the registry failed)
 *   GET /TrangThai → 200 <TrangThai>HOAT_DONG</TrangThai>
 *
 * No registration for a key is an empty list, not a fault, as the registry answers a certificate
 * it has never seen the same way as one that was never mortgaged.
 */
export function createJusticeSimulator(faults: SimulatorFaults = {}): Express {
  const registrations = world().registrations;
  const parser = createSafeParser();
  const app = express();
  app.disable('x-powered-by');
  app.get(STATUS_PATH, (_req, res) => { res.type('text/xml').send('<?xml version="1.0" encoding="utf-8"?><TrangThai>HOAT_DONG</TrangThai>'); });
  app.use(faultInjector(faults, (res) => sendFault(res, serverFault()), (req) => req.path === STATUS_PATH));
  let lookups = 0;
  app.post(SOAP_PATH, express.text({ type: () => true, limit: '16kb' }), (req, res) => {
    if (!req.is('text/xml')) {
      res.status(415).type('text/plain').send('SOAP 1.1 expects Content-Type: text/xml');
      return;
    }
    try {
      const { operation, content } = readRequest(String(req.body ?? ''), req.get('soapaction'), parser);
      const found = registrations.filter(selectorFor(operation, content));
      lookups++;
      res.type('text/xml').send(buildEnvelope(`${operation}Response`, {
        KetQuaTraCuu: {
          MaTraCuu: `DKBD-TC-${String(lookups).padStart(10, '0')}`,
          ThoiDiemTraCuu: new Date().toISOString(),
          SoLuong: found.length,
          DanhSachDangKy: { DangKy: found.map(toNative) },
        },
      }));
    } catch (e) {
      sendFault(res, e instanceof ClientFault ? e.xml : serverFault());
    }
  });
  // Body-parser failures (too large, bad charset) are the client's fault; anything else the registry's.
  app.use((e: { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    sendFault(res, e?.status && e.status < 500 ? new ClientFault('DKBD-400', 'Yêu cầu không hợp lệ').xml : serverFault());
  });
  return app;
}

/** A request the registry refuses; rendered as a soap:Client fault. */
class ClientFault extends Error {
  readonly xml: string;
  constructor(code: string, message: string) {
    super(message);
    this.xml = buildFault('Client', message, { MaLoi: code, MoTa: message });
  }
}

const serverFault = () => buildFault('Server', 'Lỗi hệ thống', { MaLoi: 'DKBD-500', MoTa: 'Hệ thống đang gặp sự cố, vui lòng thử lại sau' });

/** SOAP 1.1 §6.2: every fault travels with HTTP 500, the client's as well as the server's. */
function sendFault(res: Response, xml: string): void {
  res.status(500).type('text/xml').send(xml);
}

function readRequest(xml: string, soapAction: string | undefined, parser: ReturnType<typeof createSafeParser>) {
  const reading = readEnvelope(xml, parser);
  if (!reading.ok) {
    if (reading.reason === 'declaration') throw new ClientFault('DKBD-DTD', 'Không chấp nhận DOCTYPE hoặc khai báo thực thể');
    throw new ClientFault('DKBD-400', 'Thông điệp SOAP không hợp lệ');
  }
  const operation = reading.element as RegistryOperation;
  if (!OPERATIONS.includes(operation)) throw new ClientFault('DKBD-404', 'Thao tác không được hỗ trợ');
  // SOAP 1.1 quotes the action; a namespace-qualified action names the operation after '#' or '/'.
  const action = (soapAction ?? '').trim().replace(/^"|"$/g, '').split(/[#/]/).pop();
  if (action !== operation) throw new ClientFault('DKBD-405', 'SOAPAction không khớp với thao tác');
  const content = reading.content && typeof reading.content === 'object' ? (reading.content as Record<string, unknown>) : {};
  return { operation, content };
}

function field(content: Record<string, unknown>, name: string, pattern: RegExp, message: string): string {
  const value = content[name];
  if (typeof value !== 'string' || !pattern.test(value)) throw new ClientFault('DKBD-400', message);
  return value;
}

function selectorFor(operation: RegistryOperation, content: Record<string, unknown>): (r: WorldRegistration) => boolean {
  switch (operation) {
    case 'TraCuuTheoGiayChungNhan': {
      const serial = field(content, 'SoPhatHanh', /^[A-Z]{2} \d{6}$/, 'Số phát hành giấy chứng nhận không hợp lệ');
      return (r) => r.certificateSerial === serial;
    }
    case 'TraCuuTheoThuaDat': {
      const parcel: WorldParcelRef = {
        communeCode: field(content, 'MaXaPhuong', /^\d{5}$/, 'Mã xã/phường không hợp lệ'),
        mapSheet: Number(field(content, 'SoToBanDo', /^[1-9]\d{0,4}$/, 'Số tờ bản đồ không hợp lệ')),
        parcelNumber: Number(field(content, 'SoThuaDat', /^[1-9]\d{0,5}$/, 'Số thửa đất không hợp lệ')),
      };
      return (r) => sameParcel(r.parcel, parcel);
    }
    case 'TraCuuTheoBenBaoDam': {
      const id = field(content, 'SoDinhDanh', /^\d{12}$/, 'Số định danh bên bảo đảm không hợp lệ');
      return (r) => r.grantor.personalId === id;
    }
  }
}

const NATIVE_STATUS = { registered: 'DA_DANG_KY', amended: 'DA_THAY_DOI', released: 'DA_XOA' } as const;

function toNative(r: WorldRegistration) {
  return {
    SoDangKy: r.registrationNumber,
    ThoiDiemDangKy: r.registeredAt,
    LoaiBienPhap: 'THE_CHAP',
    TrangThai: NATIVE_STATUS[r.status],
    ...(r.releasedAt ? { ThoiDiemXoa: r.releasedAt } : {}),
    BenNhanBaoDam: { TenToChuc: r.securedParty.name, MaSoThue: r.securedParty.taxCode },
    BenBaoDam: { SoDinhDanh: r.grantor.personalId, HoTen: r.grantor.name },
    TaiSan: {
      SoPhatHanhGCN: r.certificateSerial,
      ThuaDat: { MaXaPhuong: r.parcel.communeCode, SoToBanDo: r.parcel.mapSheet, SoThuaDat: r.parcel.parcelNumber },
    },
  };
}
