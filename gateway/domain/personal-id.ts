/**
 * Personal identification number (số định danh cá nhân): 12 digits =
 * 3-digit province code + century/sex digit + 2-digit birth year + 6 random digits.
 */

/** Province codes of birth registration (Circular 59/2021/TT-BCA, appendix). */
export const provinceCodes: Readonly<Record<string, string>> = Object.freeze({
  '001': 'Hà Nội', '002': 'Hà Giang', '004': 'Cao Bằng', '006': 'Bắc Kạn', '008': 'Tuyên Quang',
  '010': 'Lào Cai', '011': 'Điện Biên', '012': 'Lai Châu', '014': 'Sơn La', '015': 'Yên Bái',
  '017': 'Hòa Bình', '019': 'Thái Nguyên', '020': 'Lạng Sơn', '022': 'Quảng Ninh', '024': 'Bắc Giang',
  '025': 'Phú Thọ', '026': 'Vĩnh Phúc', '027': 'Bắc Ninh', '030': 'Hải Dương', '031': 'Hải Phòng',
  '033': 'Hưng Yên', '034': 'Thái Bình', '035': 'Hà Nam', '036': 'Nam Định', '037': 'Ninh Bình',
  '038': 'Thanh Hóa', '040': 'Nghệ An', '042': 'Hà Tĩnh', '044': 'Quảng Bình', '045': 'Quảng Trị',
  '046': 'Thừa Thiên Huế', '048': 'Đà Nẵng', '049': 'Quảng Nam', '051': 'Quảng Ngãi', '052': 'Bình Định',
  '054': 'Phú Yên', '056': 'Khánh Hòa', '058': 'Ninh Thuận', '060': 'Bình Thuận', '062': 'Kon Tum',
  '064': 'Gia Lai', '066': 'Đắk Lắk', '067': 'Đắk Nông', '068': 'Lâm Đồng', '070': 'Bình Phước',
  '072': 'Tây Ninh', '074': 'Bình Dương', '075': 'Đồng Nai', '077': 'Bà Rịa - Vũng Tàu', '079': 'Hồ Chí Minh',
  '080': 'Long An', '082': 'Tiền Giang', '083': 'Bến Tre', '084': 'Trà Vinh', '086': 'Vĩnh Long',
  '087': 'Đồng Tháp', '089': 'An Giang', '091': 'Kiên Giang', '092': 'Cần Thơ', '093': 'Hậu Giang',
  '094': 'Sóc Trăng', '095': 'Bạc Liêu', '096': 'Cà Mau',
});

export type Sex = 'male' | 'female';

export interface PersonalIdParts {
  provinceCode: string;
  province: string;
  sex: Sex;
  /** Full birth year as far as the id tells it (century from the century/sex digit). */
  birthYear: number;
}

const CENTURIES = [1900, 1900, 2000, 2000, 2100, 2100, 2200, 2200, 2300, 2300];

/** Parses a personal id's structure; returns null when it is not a valid id. */
export function parsePersonalId(id: string): PersonalIdParts | null {
  if (!/^\d{12}$/.test(id)) return null;
  const provinceCode = id.slice(0, 3);
  const province = provinceCodes[provinceCode];
  if (!province) return null;
  const centurySex = Number(id[3]);
  return {
    provinceCode,
    province,
    sex: centurySex % 2 === 0 ? 'male' : 'female',
    birthYear: CENTURIES[centurySex]! + Number(id.slice(4, 6)),
  };
}

export const isPersonalId = (id: string): boolean => parsePersonalId(id) !== null;

/** True when the id's century/sex digit and year agree with a record's birth date (YYYY-MM-DD) and sex. */
export function personalIdAgreesWith(id: string, dateOfBirth: string, sex: Sex): boolean {
  const parts = parsePersonalId(id);
  if (!parts) return false;
  return parts.sex === sex && parts.birthYear === Number(dateOfBirth.slice(0, 4));
}

/** Builds a personal id from its parts (used by the seed data). */
export function makePersonalId(provinceCode: string, birthYear: number, sex: Sex, serial: number): string {
  const century = Math.floor((birthYear - 1900) / 100);
  const digit = century * 2 + (sex === 'female' ? 1 : 0);
  return `${provinceCode}${digit}${String(birthYear % 100).padStart(2, '0')}${String(serial).padStart(6, '0')}`;
}
