/**
 * The simulated province: one deterministic seed world shared by all four agency simulators, so
 * that the citizens of the population database own the land registry's parcels, which carry the
 * tax authority's obligations and the justice registry's mortgages.
 *
 * The first citizens and parcels are fixed (the README's walk-through uses them); the rest are
 * generated from a seeded PRNG, so every run sees the same world.
 */
import { makePersonalId, parcelRefOf, sameParcel, withCheckDigit, type ParcelRef, type Sex } from '../../gateway/domain/index.ts';
import { seededRandom } from '../shared/seeded-random.ts';

export interface WorldAddress { street: string; commune: string; district: string; province: string }
export interface WorldCitizen {
  personalId: string;
  fullName: string;
  dateOfBirth: string; // YYYY-MM-DD
  sex: Sex;
  nationality: string;
  ethnicity: string;
  hometown: string;
  permanentAddress: WorldAddress;
  currentAddress: WorldAddress;
  lifeStatus: 'alive' | 'deceased';
  dateOfDeath?: string;
  fatherId?: string;
  motherId?: string;
  spouseId?: string;
}
export type WorldParcelRef = ParcelRef;
export interface WorldParcel extends WorldParcelRef {
  address: WorldAddress;
  area: number;
  landUse: string;
  term: string;
  certificate: { serial: string; entryNumber: string; issueDate: string };
  owners: { personalId: string; name: string; share: number }[];
}
export type ObligationKind = 'land_use_levy' | 'land_rent' | 'registration_fee' | 'personal_income_tax';
export interface WorldObligation {
  noticeNumber: string;
  kind: ObligationKind;
  taxCode: string;
  parcel: WorldParcelRef;
  amount: number;
  issuedAt: string;
  dueDate: string;
  paid: boolean;
  paidAt?: string;
}
export interface WorldRegistration {
  registrationNumber: string;
  registeredAt: string;
  kind: 'mortgage';
  status: 'registered' | 'amended' | 'released';
  releasedAt?: string;
  securedParty: { name: string; taxCode: string };
  grantor: { personalId: string; name: string };
  parcel: WorldParcelRef;
  certificateSerial: string;
}
export interface World {
  citizens: WorldCitizen[];
  parcels: WorldParcel[];
  obligations: WorldObligation[];
  registrations: WorldRegistration[];
}


const FAMILY = ['Nguyễn', 'Trần', 'Lê', 'Phạm', 'Hoàng', 'Huỳnh', 'Phan', 'Vũ', 'Võ', 'Đặng', 'Bùi', 'Đỗ', 'Hồ', 'Ngô', 'Dương', 'Lý'];
const MIDDLE_M = ['Văn', 'Hữu', 'Đức', 'Minh', 'Quốc', 'Thành'];
const MIDDLE_F = ['Thị', 'Ngọc', 'Thu', 'Thanh', 'Diệu', 'Mỹ'];
const GIVEN_M = ['An', 'Bình', 'Dũng', 'Hải', 'Hùng', 'Khánh', 'Long', 'Nam', 'Phong', 'Phúc', 'Quân', 'Sơn', 'Tuấn', 'Việt', 'Đạt', 'Thắng'];
const GIVEN_F = ['Chi', 'Giang', 'Hà', 'Hạnh', 'Hòa', 'Hương', 'Lan', 'Linh', 'Mai', 'Nga', 'Quỳnh', 'Tâm', 'Thảo', 'Trang', 'Yến', 'Ánh'];

/** Communes (ward/commune codes of the national administrative catalogue) used by the seed. */
export const COMMUNES = [
  { code: '00004', commune: 'Phường Ba Đình', district: 'Quận Ba Đình', province: 'Hà Nội', provinceCode: '001' },
  { code: '00070', commune: 'Phường Hoàn Kiếm', district: 'Quận Hoàn Kiếm', province: 'Hà Nội', provinceCode: '001' },
  { code: '02212', commune: 'Phường Minh Xuân', district: 'Thành phố Tuyên Quang', province: 'Tuyên Quang', provinceCode: '008' },
  { code: '18070', commune: 'Phường Trần Phú', district: 'Thành phố Hà Tĩnh', province: 'Hà Tĩnh', provinceCode: '042' },
  { code: '26734', commune: 'Phường Bến Nghé', district: 'Quận 1', province: 'Hồ Chí Minh', provinceCode: '079' },
  { code: '27139', commune: 'Phường Thảo Điền', district: 'Thành phố Thủ Đức', province: 'Hồ Chí Minh', provinceCode: '079' },
] as const;
const STREETS = ['Phố Điện Biên Phủ', 'Đường Lê Lợi', 'Đường Trần Hưng Đạo', 'Phố Hàng Bài', 'Đường Nguyễn Du', 'Đường Hà Huy Tập', 'Đường Phan Đình Phùng'];
const LAND_USES = ['ODT', 'ODT', 'ONT', 'ONT', 'LUC', 'CLN'];

/** Secured parties: banks, with tax codes carrying valid check digits. */
export const BANKS = [
  { name: 'Ngân hàng TMCP Ngoại thương Việt Nam', taxCode: withCheckDigit('010011243')! },
  { name: 'Ngân hàng Nông nghiệp và Phát triển Nông thôn Việt Nam', taxCode: withCheckDigit('010068641')! },
  { name: 'Ngân hàng TMCP Công thương Việt Nam', taxCode: withCheckDigit('010011194')! },
].filter((b) => b.taxCode);

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const isoDate = (y: number, m: number, d: number) => `${y}-${pad(m)}-${pad(d)}`;

function buildWorld(): World {
  const rand = seededRandom(20251123);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const citizens: WorldCitizen[] = [];
  const usedIds = new Set<string>();

  const addressIn = (c: (typeof COMMUNES)[number]): WorldAddress => ({
    street: `Số ${int(1, 199)} ${pick(STREETS)}`, commune: c.commune, district: c.district, province: c.province,
  });
  const addCitizen = (fixed: Partial<WorldCitizen> & { fullName: string; sex: Sex; year: number; commune: number; serial?: number }) => {
    const c = COMMUNES[fixed.commune]!;
    let serial = fixed.serial ?? int(1, 999999);
    let id = makePersonalId(c.provinceCode, fixed.year, fixed.sex, serial);
    while (usedIds.has(id)) id = makePersonalId(c.provinceCode, fixed.year, fixed.sex, ++serial % 1000000);
    usedIds.add(id);
    const address = addressIn(c);
    const citizen: WorldCitizen = {
      personalId: id,
      fullName: fixed.fullName.normalize('NFC'),
      dateOfBirth: isoDate(fixed.year, int(1, 12), int(1, 28)),
      sex: fixed.sex,
      nationality: 'Việt Nam',
      ethnicity: 'Kinh',
      hometown: `${c.district}, ${c.province}`,
      permanentAddress: address,
      currentAddress: rand() < 0.8 ? address : addressIn(pick(COMMUNES)),
      lifeStatus: fixed.lifeStatus ?? 'alive',
      ...(fixed.dateOfDeath ? { dateOfDeath: fixed.dateOfDeath } : {}),
    };
    citizens.push(citizen);
    return citizen;
  };

  // Fixed citizens used by the README walk-through and the end-to-end tests.
  const an = addCitizen({ fullName: 'Nguyễn Văn An', sex: 'male', year: 1985, commune: 0, serial: 123456 });
  const binh = addCitizen({ fullName: 'Trần Thị Bình', sex: 'female', year: 1988, commune: 0, serial: 654321 });
  an.spouseId = binh.personalId; binh.spouseId = an.personalId;
  const cuong = addCitizen({ fullName: 'Lê Văn Cường', sex: 'male', year: 1972, commune: 4, serial: 112233 });
  const dung = addCitizen({ fullName: 'Phạm Thị Dung', sex: 'female', year: 1990, commune: 3, serial: 445566 });
  const deceased = addCitizen({ fullName: 'Hoàng Văn Đức', sex: 'male', year: 1941, commune: 2, serial: 778899, lifeStatus: 'deceased', dateOfDeath: '2024-03-15' });
  const nodiac = addCitizen({ fullName: 'Đặng Thị Hương', sex: 'female', year: 1979, commune: 5, serial: 246810 });
  const young = addCitizen({ fullName: 'Vũ Minh Khánh', sex: 'male', year: 2003, commune: 4, serial: 135790 });
  const child = addCitizen({ fullName: 'Nguyễn Ngọc Mai', sex: 'female', year: 2012, commune: 0, serial: 102938 });
  child.fatherId = an.personalId; child.motherId = binh.personalId;

  while (citizens.length < 60) {
    const sex: Sex = rand() < 0.5 ? 'male' : 'female';
    const name = `${pick(FAMILY)} ${pick(sex === 'male' ? MIDDLE_M : MIDDLE_F)} ${pick(sex === 'male' ? GIVEN_M : GIVEN_F)}`;
    addCitizen({ fullName: name, sex, year: int(1950, 2005), commune: int(0, COMMUNES.length - 1) });
  }

  const parcels: WorldParcel[] = [];
  const obligations: WorldObligation[] = [];
  const registrations: WorldRegistration[] = [];
  let noticeSeq = 1;
  let regSeq = 1;
  const addParcel = (owners: { citizen: WorldCitizen; share: number; writtenAs?: string }[], communeIdx: number, opts: { mapSheet?: number; parcelNumber?: number } = {}) => {
    const c = COMMUNES[communeIdx]!;
    const n = parcels.length + 1;
    const year = int(2005, 2022);
    const parcel: WorldParcel = {
      communeCode: c.code,
      mapSheet: opts.mapSheet ?? int(1, 60),
      parcelNumber: opts.parcelNumber ?? int(1, 900),
      address: addressIn(c),
      area: Math.round(int(400, 30000)) / 10,
      landUse: pick(LAND_USES),
      term: 'long_term',
      certificate: { serial: `CS ${pad(100000 + n, 6)}`, entryNumber: `CS${pad(n, 5)}`, issueDate: isoDate(year, int(1, 12), int(1, 28)) },
      owners: owners.map((o) => ({ personalId: o.citizen.personalId, name: o.writtenAs ?? o.citizen.fullName, share: o.share })),
    };
    if (parcel.landUse === 'LUC' || parcel.landUse === 'CLN') parcel.term = isoDate(year + 50, 12, 31);
    parcels.push(parcel);
    return parcel;
  };
  const ref = parcelRefOf;
  const addObligation = (p: WorldParcel, owner: WorldCitizen, kind: ObligationKind, amount: number, paid: boolean, year = 2025) => {
    const due = isoDate(year, int(1, 12), int(1, 28));
    obligations.push({
      noticeNumber: `TB-${year}-${pad(noticeSeq++, 6)}`, kind, taxCode: owner.personalId, parcel: ref(p), amount,
      issuedAt: isoDate(year, 1, 5), dueDate: due, paid, ...(paid ? { paidAt: due } : {}),
    });
  };
  const addMortgage = (p: WorldParcel, grantor: WorldCitizen, status: WorldRegistration['status'], year: number) => {
    const bank = pick(BANKS);
    registrations.push({
      registrationNumber: `BD-${year}-${pad(regSeq++, 6)}`, registeredAt: `${isoDate(year, int(1, 12), int(1, 28))}T09:00:00+07:00`,
      kind: 'mortgage', status, ...(status === 'released' ? { releasedAt: `${isoDate(year + 2, int(1, 12), int(1, 28))}T10:00:00+07:00` } : {}),
      securedParty: bank, grantor: { personalId: grantor.personalId, name: grantor.fullName },
      parcel: ref(p), certificateSerial: p.certificate.serial,
    });
  };

  // Fixed parcels: CS 100001 clear (a released mortgage, obligations paid); CS 100002 mortgaged;
  // CS 100003 with unpaid obligations; CS 100004 owned by a deceased citizen; CS 100005 with the
  // owner's name written without diacritics in the land registry.
  const clear = addParcel([{ citizen: an, share: 0.5 }, { citizen: binh, share: 0.5 }], 0, { mapSheet: 12, parcelNumber: 345 });
  addMortgage(clear, an, 'released', 2018);
  addObligation(clear, an, 'land_use_levy', 120_000_000, true, 2019);
  const mortgaged = addParcel([{ citizen: cuong, share: 1 }], 4, { mapSheet: 8, parcelNumber: 112 });
  addMortgage(mortgaged, cuong, 'registered', 2023);
  addObligation(mortgaged, cuong, 'registration_fee', 15_000_000, true, 2021);
  const owing = addParcel([{ citizen: dung, share: 1 }], 3, { mapSheet: 21, parcelNumber: 77 });
  addObligation(owing, dung, 'registration_fee', 8_500_000, false);
  addObligation(owing, dung, 'land_use_levy', 240_000_000, false);
  const inherited = addParcel([{ citizen: deceased, share: 1 }], 2, { mapSheet: 5, parcelNumber: 9 });
  addObligation(inherited, deceased, 'land_rent', 3_200_000, true, 2023);
  const plain = foldForRegistry(nodiac.fullName);
  const nd = addParcel([{ citizen: nodiac, share: 1, writtenAs: plain }], 5, { mapSheet: 30, parcelNumber: 501 });
  addMortgage(nd, nodiac, 'amended', 2022);
  addParcel([{ citizen: young, share: 1 }], 4, { mapSheet: 9, parcelNumber: 210 });

  // Generated parcels for about half of the other adult citizens.
  for (const citizen of citizens.slice(8)) {
    if (rand() < 0.45 || citizen.lifeStatus === 'deceased') continue;
    const p = addParcel([{ citizen, share: 1 }], int(0, COMMUNES.length - 1));
    const r = rand();
    if (r < 0.2) addMortgage(p, citizen, 'registered', int(2015, 2025));
    else if (r < 0.35) addMortgage(p, citizen, 'released', int(2010, 2020));
    if (rand() < 0.3) addObligation(p, citizen, pick(['land_use_levy', 'registration_fee', 'personal_income_tax'] as const), int(10, 900) * 100_000, rand() < 0.5);
  }
  // One owner holds three parcels, so a lookup by owner pages through the land registry's answer.
  addParcel([{ citizen: young, share: 1 }], 5, { mapSheet: 14, parcelNumber: 88 });
  addParcel([{ citizen: young, share: 0.5 }, { citizen: cuong, share: 0.5 }], 4, { mapSheet: 9, parcelNumber: 211 });
  return { citizens, parcels, obligations, registrations };
}

/** The land registry wrote one owner's name without diacritics, as older records often are. */
function foldForRegistry(name: string): string {
  return name.normalize('NFD').replace(/\p{M}/gu, '').replace(/đ/g, 'd').replace(/Đ/g, 'D');
}

let cached: World | undefined;
/** The seed world (built once, deeply frozen so no simulator changes another's view). */
export function world(): World {
  cached ??= deepFreeze(buildWorld());
  return cached;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export { sameParcel };
