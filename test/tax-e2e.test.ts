import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import express from 'express';
import { world } from '../adapters/world/index.ts';
import { listenOnLoopback } from '../adapters/index.ts';
import { createTaxSimulator, type TaxSimulator } from '../adapters/tax/index.ts';
import { startGateway, testConfig, type TestGateway } from './support/fixtures.ts';

const DUNG = '042190445566';
const DUNG_PARCEL = { communeCode: '18070', mapSheet: 21, parcelNumber: 77 };
const sheet = {
  dossierCode: 'HS-2026-000123',
  transferor: { personalId: '079203135790', fullName: 'Vũ Minh Khánh' },
  transferee: { personalId: '079072112233', fullName: 'Lê Văn Cường' },
  parcel: { communeCode: '26734', mapSheet: 9, parcelNumber: 210 },
  certificateSerial: 'CS 100006',
  declaredPrice: 2_400_000_000,
  contractDate: '2026-11-20',
};
const declare = (gw: TestGateway, body: unknown, key?: string) =>
  gw.call('tax.land-transfer-declaration', body, { client: 'land-office', headers: key ? { 'Idempotency-Key': key } : {} });

/** A tax simulator the test owns (so it outlives a gateway restart and its filings can be counted). */
async function ownSimulator(wrap?: (sim: TaxSimulator) => express.Express) {
  const sim = createTaxSimulator();
  const upstream = await listenOnLoopback(wrap ? wrap(sim) : sim);
  return { sim, upstream };
}

describe('tax.obligations and tax.land-transfer-declaration end to end', () => {
  let gw: TestGateway;
  let sim: TaxSimulator;
  let closeUpstream: () => Promise<void>;
  beforeAll(async () => {
    const own = await ownSimulator();
    sim = own.sim;
    closeUpstream = own.upstream.close;
    gw = await startGateway(await testConfig((raw) => { raw.upstreams.tax.url = own.upstream.url; }));
  });
  afterAll(async () => {
    await gw?.close();
    await closeUpstream?.();
  });

  it('lists unpaid obligations by tax code (a personal id) with the outstanding total', async () => {
    const res = await gw.call('tax.obligations', { taxCode: DUNG }, { client: 'land-office' });
    expect(res.status).toBe(200);
    const body = await res.json();
    const expected = world().obligations.filter((o) => o.taxCode === DUNG);
    expect(body.obligations).toHaveLength(expected.length);
    expect(body.obligations.map((o: any) => o.noticeNumber).sort()).toEqual(expected.map((o) => o.noticeNumber).sort());
    expect(body.obligations.every((o: any) => o.paid === false && o.taxCode === DUNG)).toBe(true);
    expect(body.summary).toEqual({ outstandingAmount: 248_500_000, outstandingCount: 2 });
    expect(body.fieldGroups).toEqual({ obligations: 'released' });
    expect(body.source).toMatchObject({ agency: 'tax', reference: expect.stringMatching(/^GD/) });
  });

  it('lists obligations by parcel', async () => {
    const res = await gw.call('tax.obligations', { parcel: DUNG_PARCEL }, { client: 'land-office' });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.obligations.map((o: any) => o.kind).sort()).toEqual(['land_use_levy', 'registration_fee']);
    expect(body.obligations.every((o: any) => o.parcel.communeCode === '18070' && o.parcel.parcelNumber === 77)).toBe(true);
  });

  it('answers "no data" as an empty list, 200', async () => {
    const res = await gw.call('tax.obligations', { taxCode: '0100233488' }, { client: 'land-office' });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.obligations).toEqual([]);
    expect(body.summary).toEqual({ outstandingAmount: 0, outstandingCount: 0 });
  });

  it('withholds the obligations group from a client not granted it', async () => {
    const res = await gw.call('tax.obligations', { taxCode: DUNG }, { client: 'narrow' });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).not.toHaveProperty('obligations');
    expect(body).not.toHaveProperty('summary');
    expect(body.fieldGroups).toEqual({ obligations: 'withheld' });
  });

  it('refuses a tax code with a wrong check digit, and an empty query, with REQUEST_INVALID', async () => {
    for (const body of [{ taxCode: '0100233487' }, { taxCode: '0100233488-000' }, {}, { parcel: { communeCode: '18070' } }]) {
      const res = await gw.call('tax.obligations', body, { client: 'land-office' });
      expect(res.status).toBe(400);
      expect((await res.json()).code).toBe('REQUEST_INVALID');
    }
  });

  it('fetches a new token once the tax authority revoked the old one', async () => {
    await gw.call('tax.obligations', { taxCode: DUNG }, { client: 'land-office' });
    const issued = sim.control.tokensIssued();
    sim.control.revokeAllTokens();
    const res = await gw.call('tax.obligations', { taxCode: DUNG }, { client: 'land-office' });
    expect(res.status).toBe(200);
    expect(sim.control.tokensIssued()).toBe(issued + 1);
  });

  it('requires an Idempotency-Key for the declaration: IDEMPOTENCY_KEY_REQUIRED', async () => {
    const res = await declare(gw, sheet);
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe('IDEMPOTENCY_KEY_REQUIRED');
  });

  it('refuses a sheet whose transferor is the transferee: REQUEST_INVALID', async () => {
    const res = await declare(gw, { ...sheet, transferee: sheet.transferor }, 'key-self-transfer-01');
    expect(res.status).toBe(400);
    expect((await res.json()).code).toBe('REQUEST_INVALID');
  });

  it('files a declaration once for repeated requests with the same key, and answers the same', async () => {
    const before = sim.control.declarationsFiled();
    const first = await declare(gw, sheet, 'dossier-HS-2026-000123-a');
    expect(first.status).toBe(200);
    const a = await first.json();
    expect(a.obligations).toEqual([
      { kind: 'registration_fee', base: 2_400_000_000, rate: 0.005, amount: 12_000_000, dueDate: expect.any(String), taxCode: sheet.transferee.personalId },
      { kind: 'personal_income_tax', base: 2_400_000_000, rate: 0.02, amount: 48_000_000, dueDate: expect.any(String), taxCode: sheet.transferor.personalId },
    ]);
    expect(a.fieldGroups).toEqual({ declaration: 'released' });

    const second = await declare(gw, sheet, 'dossier-HS-2026-000123-a');
    expect(second.status).toBe(200);
    expect(await second.json()).toEqual(a);
    expect(sim.control.declarationsFiled()).toBe(before + 1);
  });

  it('shows the filed notice in the payer\'s obligations', async () => {
    const res = await gw.call('tax.obligations', { taxCode: sheet.transferee.personalId, parcel: sheet.parcel }, { client: 'land-office' });
    const body = await res.json();
    expect(body.obligations).toEqual([expect.objectContaining({ kind: 'registration_fee', amount: 12_000_000, paid: false })]);
  });

  it('refuses the same key with a different body: IDEMPOTENCY_KEY_REUSED', async () => {
    const before = sim.control.declarationsFiled();
    const res = await declare(gw, { ...sheet, declaredPrice: 2_500_000_000 }, 'dossier-HS-2026-000123-a');
    expect(res.status).toBe(422);
    expect((await res.json()).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(sim.control.declarationsFiled()).toBe(before);
  });

  it('keeps keys per client: another client\'s same key is a new filing', async () => {
    const before = sim.control.declarationsFiled();
    const res = await gw.call('tax.land-transfer-declaration', sheet, { client: 'portal', headers: { 'Idempotency-Key': 'dossier-HS-2026-000123-a' } });
    expect(res.status).toBe(200);
    expect(sim.control.declarationsFiled()).toBe(before + 1);
  });

  it('still replays the first answer after a gateway restart', async () => {
    const first = await (await declare(gw, sheet, 'dossier-HS-2026-000123-b')).json();
    const filed = sim.control.declarationsFiled();
    await gw.gateway.close();
    gw = await startGateway(gw.config);

    const again = await declare(gw, sheet, 'dossier-HS-2026-000123-b');
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(first);
    expect(sim.control.declarationsFiled()).toBe(filed);
    const reused = await declare(gw, { ...sheet, dossierCode: 'HS-2026-000999' }, 'dossier-HS-2026-000123-b');
    expect((await reused.json()).code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('tax.land-transfer-declaration after a timed-out filing', () => {
  let gw: TestGateway;
  let sim: TaxSimulator;
  let closeUpstream: () => Promise<void>;
  let posts = 0;
  let stallNextPost = true;
  beforeAll(async () => {
    // The first filing reaches the tax authority only after the gateway gave up waiting: it IS filed, the caller got a timeout.
    const own = await ownSimulator((inner) => {
      const outer = express();
      outer.post('/tct/api/to-khai-chuyen-nhuong', express.json(), (_req, _res, next) => {
        posts++;
        if (!stallNextPost) return next();
        stallNextPost = false;
        setTimeout(next, 600);
      });
      outer.use(inner);
      return outer;
    });
    sim = own.sim;
    closeUpstream = own.upstream.close;
    gw = await startGateway(await testConfig((raw) => {
      raw.upstreams.tax.url = own.upstream.url;
      raw.upstreams.tax.resilience.timeoutMs = 300;
    }));
  });
  afterAll(async () => {
    await gw?.close();
    await closeUpstream?.();
  });

  it('answers UPSTREAM_TIMEOUT, then on a repeat finds the filing instead of filing again', async () => {
    const first = await declare(gw, sheet, 'dossier-timeout-0001');
    expect(first.status).toBe(504);
    expect((await first.json()).code).toBe('UPSTREAM_TIMEOUT');
    await vi.waitFor(() => expect(sim.control.declarationsFiled()).toBe(1), { timeout: 5000, interval: 20 });

    const again = await declare(gw, sheet, 'dossier-timeout-0001');
    expect(again.status).toBe(200);
    const body = await again.json();
    expect(body.noticeNumber).toMatch(/^TB-/);
    expect(posts).toBe(1); // looked up, not posted again
    expect(sim.control.declarationsFiled()).toBe(1);
  });
});
