/**
 * A small extra agency system, written as a plug-in from this folder alone: the provincial
 * business registry (đăng ký kinh doanh), which knows enterprises by their tax code. Its own
 * protocol speaks Vietnamese member names; the adapter maps it to the contract's.
 */
import express from 'express';
import { defineAgency, type AdapterHealth } from '../../../adapters/index.ts';
import { createUpstreamClient } from '../../../adapters/shared/upstream-client.ts';
import { faultInjector } from '../../../adapters/shared/simulator-faults.ts';
import { GatewayError } from '../../../gateway/errors.ts';
import type { UpstreamCall } from '../../../gateway/audit/index.ts';

export interface Enterprise { taxCode: string; name: string; legalRepresentative: { personalId: string; fullName: string }; address: string; status: string; source: { agency: string; retrievedAt: string; reference?: string } }
export interface BusinessAdapter extends AdapterHealth { findEnterprise(taxCode: string, trace: UpstreamCall[]): Promise<Enterprise> }

/** What the simulator holds. */
export const ENTERPRISES = [
  { mst: '0100233488', ten: 'Công ty TNHH Đất Lành', nguoi_dai_dien: { so_dinh_danh: '001085123456', ho_ten: 'Nguyễn Văn An' }, dia_chi: '12 Hàng Bài, Hoàn Kiếm, Hà Nội', tinh_trang: 'DANG_HOAT_DONG' },
];

export const businessAgency = defineAgency<BusinessAdapter>({
  name: 'business',
  simulatorPort: 9199,
  createAdapter({ baseUrl, upstream, observer }) {
    const client = createUpstreamClient({ agency: 'business', baseUrl, resilience: upstream.resilience, observer });
    return {
      name: 'business',
      findEnterprise(taxCode, trace) {
        return client.call({
          operation: 'doanh-nghiep', idempotent: true, trace,
          request: { method: 'GET', url: `/dkkd/doanh-nghiep/${encodeURIComponent(taxCode)}` },
          interpret: (res) => {
            if (res.status === 404) throw new GatewayError('SUBJECT_NOT_FOUND', 'no enterprise with this tax code');
            if (res.status !== 200) throw new GatewayError('UPSTREAM_BAD_RESPONSE', `business: HTTP ${res.status}`);
            const d = res.data as { mst: string; ten: string; nguoi_dai_dien: { so_dinh_danh: string; ho_ten: string }; dia_chi: string; tinh_trang: string; ma_tra_cuu: string };
            return {
              taxCode: d.mst, name: d.ten, legalRepresentative: { personalId: d.nguoi_dai_dien.so_dinh_danh, fullName: d.nguoi_dai_dien.ho_ten },
              address: d.dia_chi, status: d.tinh_trang === 'DANG_HOAT_DONG' ? 'active' : 'inactive',
              source: { agency: 'business', retrievedAt: new Date().toISOString(), reference: d.ma_tra_cuu },
            };
          },
          referenceOf: (e) => e.source.reference ?? null,
        });
      },
      async health() { return { up: await client.probe('/dkkd/trang-thai'), breaker: client.breakerState() }; },
      breakerState: client.breakerState,
    };
  },
  createSimulator(faults) {
    const app = express();
    app.get('/dkkd/trang-thai', (_req, res) => { res.json({ trang_thai: 'HOAT_DONG' }); });
    app.use(faultInjector(faults, (res) => { res.status(503).json({ loi: 'BAO_TRI' }); }));
    let lookups = 0;
    app.get('/dkkd/doanh-nghiep/:mst', (req, res) => {
      const found = ENTERPRISES.find((e) => e.mst === req.params.mst);
      if (!found) return void res.status(404).json({ loi: 'KHONG_TIM_THAY' });
      res.json({ ...found, ma_tra_cuu: `DK${String(++lookups).padStart(8, '0')}` });
    });
    return app;
  },
});
