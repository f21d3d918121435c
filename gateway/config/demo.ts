import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, scryptSync } from 'node:crypto';
import { join } from 'node:path';
import { loadOrCreatePrivateJwk, publicPart } from '../keys.ts';

export const DEMO_CLIENTS = [
  { id: 'portal', name: 'Cổng dịch vụ công tỉnh (provincial public service portal)' },
  { id: 'land-office', name: 'Văn phòng đăng ký đất đai (land registration office)' },
  { id: 'auditor', name: 'Thanh tra tỉnh (provincial inspectorate)' },
] as const;

export const DEMO_GATEWAY_ID = 'urn:gov:vn:province-gateway';
export const DEMO_IDP_ISSUER = 'urn:gov:vn:vneid';
/** The salt of the demo console password's hash: production refuses a hash made with it. */
export const DEMO_CONSOLE_SALT = Buffer.from('demo-console-salt');

/** Hashes a console password as `scrypt$N$r$p$salt$hash` (base64url). */
export function hashPassword(password: string, salt = randomBytes(16)): string {
  const N = 16384, r = 8, p = 1;
  const hash = scryptSync(password.normalize('NFC'), salt, 32, { N, r, p });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** Purposes with their legal basis; shared by the demo and the docker config. */
export const DEMO_PURPOSES = [
  { code: 'PUBLIC_SERVICE_PREFILL', legalBasis: 'Nghị định 45/2020/NĐ-CP (thủ tục hành chính trên môi trường điện tử); Nghị định 13/2023/NĐ-CP Điều 11 (sự đồng ý của chủ thể dữ liệu)', caseIdRequired: false },
  { code: 'LAND_TRANSFER_REGISTRATION', legalBasis: 'Luật Đất đai 2024 Điều 133; Nghị định 101/2024/NĐ-CP (đăng ký biến động đất đai)', caseIdRequired: true },
  { code: 'LAND_FINANCIAL_OBLIGATIONS', legalBasis: 'Luật Quản lý thuế 38/2019/QH14; Nghị định 103/2024/NĐ-CP (tiền sử dụng đất, tiền thuê đất)', caseIdRequired: true },
  { code: 'CRIMINAL_INVESTIGATION', legalBasis: 'Bộ luật Tố tụng hình sự 2015 Điều 88 (thu thập chứng cứ)', caseIdRequired: true, confidentialDays: 180 },
  { code: 'AUDIT_REVIEW', legalBasis: 'Luật Thanh tra 2022; Nghị định 13/2023/NĐ-CP Điều 27 (nhật ký xử lý dữ liệu cá nhân)', caseIdRequired: false },
];

export const DEMO_FORMS = [
  {
    id: 'land-transfer-registration', title: 'Đăng ký biến động quyền sử dụng đất (chuyển nhượng)', procedureCode: '1.012761',
    documentsReplaced: ['Bản sao CCCD', 'Giấy chứng nhận quyền sử dụng đất (bản sao)'],
    fields: [
      { name: 'fullName', label: 'Họ và tên', service: 'population.identity', fieldGroup: 'core', path: 'fullName' },
      { name: 'dateOfBirth', label: 'Ngày sinh', service: 'population.identity', fieldGroup: 'core', path: 'dateOfBirth' },
      { name: 'permanentAddress', label: 'Nơi thường trú', service: 'population.identity', fieldGroup: 'address', path: 'permanentAddress' },
      { name: 'parcels', label: 'Thửa đất đang sử dụng', service: 'land.parcel', fieldGroup: 'parcel', path: 'parcels' },
      { name: 'certificates', label: 'Giấy chứng nhận quyền sử dụng đất', service: 'land.parcel', fieldGroup: 'certificate', path: 'parcels' },
    ],
  },
  {
    id: 'permanent-residence-registration', title: 'Đăng ký thường trú', procedureCode: '1.004194',
    documentsReplaced: ['Bản sao CCCD', 'Giấy tờ chứng minh quan hệ nhân thân'],
    fields: [
      { name: 'fullName', label: 'Họ và tên', service: 'population.identity', fieldGroup: 'core', path: 'fullName' },
      { name: 'dateOfBirth', label: 'Ngày sinh', service: 'population.identity', fieldGroup: 'core', path: 'dateOfBirth' },
      { name: 'sex', label: 'Giới tính', service: 'population.identity', fieldGroup: 'core', path: 'sex' },
      { name: 'currentAddress', label: 'Nơi ở hiện tại', service: 'population.identity', fieldGroup: 'address', path: 'currentAddress' },
      { name: 'father', label: 'Cha', service: 'population.identity', fieldGroup: 'family', path: 'father' },
      { name: 'mother', label: 'Mẹ', service: 'population.identity', fieldGroup: 'family', path: 'mother' },
      { name: 'spouse', label: 'Vợ/chồng', service: 'population.identity', fieldGroup: 'family', path: 'spouse' },
    ],
  },
  {
    id: 'driving-licence-renewal', title: 'Đổi giấy phép lái xe', procedureCode: '1.002804',
    documentsReplaced: ['Bản sao CCCD'],
    fields: [
      { name: 'fullName', label: 'Họ và tên', service: 'population.identity', fieldGroup: 'core', path: 'fullName' },
      { name: 'dateOfBirth', label: 'Ngày sinh', service: 'population.identity', fieldGroup: 'core', path: 'dateOfBirth' },
      { name: 'nationality', label: 'Quốc tịch', service: 'population.identity', fieldGroup: 'core', path: 'nationality' },
      { name: 'permanentAddress', label: 'Nơi cư trú', service: 'population.identity', fieldGroup: 'address', path: 'permanentAddress' },
    ],
  },
];

/** What the land office may see of each service (each contract's own field groups). */
const LAND_OFFICE_GROUPS: Record<string, string[]> = {
  'population.identity': ['core', 'address', 'vital'],
  'land.parcel': ['parcel', 'certificate', 'owners'],
  'tax.obligations': ['obligations'],
  'justice.secured-transactions': ['registrations'],
  'land.title-verification': ['parcel', 'certificate', 'owners', 'registrations', 'obligations'],
  'tax.land-transfer-declaration': ['declaration'],
};

/**
 * The embedded demo's config: demo keys for `portal`, `land-office`, `auditor` and the identity
 * provider `idp` generated under `<dataDir>/demo/` at first start, a console account, and grants
 * that show minimisation (the portal sees fewer identity groups than the land office).
 */
export async function demoConfig(dataDir: string): Promise<Record<string, unknown>> {
  const demoDir = join(dataDir, 'demo');
  mkdirSync(demoDir, { recursive: true, mode: 0o700 });
  const clients = [];
  for (const c of DEMO_CLIENTS) {
    const jwk = await loadOrCreatePrivateJwk(join(demoDir, `${c.id}.private.jwk.json`), 'ES256');
    clients.push({ id: c.id, name: c.name, keys: { jwks: { keys: [publicPart(jwk)] } } });
  }
  const idp = await loadOrCreatePrivateJwk(join(demoDir, 'idp.private.jwk.json'), 'ES256');
  const passwordFile = join(demoDir, 'console-password.txt');
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(9).toString('base64url') + '\n', { mode: 0o600 });
  const consolePassword = readFileSync(passwordFile, 'utf8').trim();

  return {
    gatewayId: DEMO_GATEWAY_ID,
    mode: 'demo',
    dataDir,
    // One instance, no client caches its JWKS here for long: a rotated key may sign soon.
    signing: { rotation: { activationDelaySeconds: 10, pollSeconds: 2 } },
    identityProvider: { issuer: DEMO_IDP_ISSUER, jwks: { keys: [publicPart(idp)] } },
    clients,
    purposes: DEMO_PURPOSES,
    grants: [
      { client: 'portal', service: 'population.identity', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['core', 'address'] },
      { client: 'portal', service: 'land.parcel', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['parcel', 'certificate', 'owners'] },
      { client: 'portal', service: 'portal.prefill', purposes: ['PUBLIC_SERVICE_PREFILL'], fieldGroups: ['core', 'address', 'family', 'parcel', 'certificate'] },
      { client: 'portal', service: 'citizen.access-log' },
      ...Object.entries(LAND_OFFICE_GROUPS).map(([service, fieldGroups]) => ({
        client: 'land-office', service, purposes: ['LAND_TRANSFER_REGISTRATION', 'LAND_FINANCIAL_OBLIGATIONS'], fieldGroups,
      })),
      { client: 'auditor', service: 'audit', purposes: ['AUDIT_REVIEW'] },
    ],
    forms: DEMO_FORMS,
    console: { accounts: [{ username: 'auditor', displayName: 'Demo auditor', passwordHash: hashPassword(consolePassword, DEMO_CONSOLE_SALT) }] },
  };
}

export function demoConsolePassword(dataDir: string): string {
  return readFileSync(join(dataDir, 'demo', 'console-password.txt'), 'utf8').trim();
}
