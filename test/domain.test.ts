import { describe, expect, it } from 'vitest';
import { compareNames, isEnterpriseTaxCode, isPersonalId, isTaxCode, parsePersonalId, personalIdAgreesWith, withCheckDigit } from '../gateway/domain/index.ts';
import { world } from '../adapters/world/index.ts';

describe('personal id', () => {
  it('parses province, century and sex', () => {
    expect(parsePersonalId('001085123456')).toMatchObject({ provinceCode: '001', province: 'Hà Nội', sex: 'male', birthYear: 1985 });
    expect(parsePersonalId('079203135790')).toMatchObject({ province: 'Hồ Chí Minh', sex: 'male', birthYear: 2003 });
    expect(parsePersonalId('042190445566')).toMatchObject({ sex: 'female', birthYear: 1990 });
    expect(parsePersonalId('001312102938')).toMatchObject({ sex: 'female', birthYear: 2012 });
  });
  it('refuses wrong length, letters and unknown provinces', () => {
    for (const id of ['00108512345', '0010851234567', '00108512345a', '003085123456', '099085123456', '']) expect(isPersonalId(id)).toBe(false);
  });
  it('checks agreement with birth date and sex', () => {
    expect(personalIdAgreesWith('001085123456', '1985-10-05', 'male')).toBe(true);
    expect(personalIdAgreesWith('001085123456', '1985-10-05', 'female')).toBe(false);
    expect(personalIdAgreesWith('001085123456', '1986-10-05', 'male')).toBe(false);
  });
  it('holds for every citizen of the seed world', () => {
    const citizens = world().citizens;
    expect(citizens.length).toBeGreaterThanOrEqual(50);
    expect(new Set(citizens.map((c) => c.personalId.slice(0, 3))).size).toBeGreaterThanOrEqual(3);
    expect(citizens.filter((c) => c.lifeStatus === 'deceased')).toHaveLength(1);
    for (const c of citizens) expect(personalIdAgreesWith(c.personalId, c.dateOfBirth, c.sex)).toBe(true);
  });
});

describe('tax code', () => {
  it('checks the check digit (0100233488 is valid)', () => {
    expect(isEnterpriseTaxCode('0100233488')).toBe(true);
    expect(isEnterpriseTaxCode('0100233489')).toBe(false);
    expect(isEnterpriseTaxCode('0100233488-001')).toBe(true);
    expect(isEnterpriseTaxCode('0100233488-000')).toBe(false);
    expect(isEnterpriseTaxCode('0100000000')).toBe(false);
  });
  it('never issues a code whose remainder is 0', () => {
    for (let n = 100000000; n < 100000300; n++) {
      const nine = String(n).padStart(9, '0');
      const full = withCheckDigit(nine);
      if (full) expect(isEnterpriseTaxCode(full)).toBe(true);
      for (let d = 0; d <= 9; d++) if (`${nine}${d}` !== full) expect(isEnterpriseTaxCode(`${nine}${d}`)).toBe(false);
    }
  });
  it('accepts a 12-digit personal id as an individual tax code', () => {
    expect(isTaxCode('001085123456')).toBe(true);
    expect(isTaxCode('12345')).toBe(false);
  });
});

describe('names', () => {
  it('tells exact, diacritics-folded and different matches apart', () => {
    expect(compareNames('Đặng Thị Hương', 'Đặng Thị Hương')).toBe('exact');
    expect(compareNames('Đặng Thị Hương', 'Đặng Thị Hương'.normalize('NFD'))).toBe('exact');
    expect(compareNames('Đặng Thị Hương', 'Dang Thi Huong')).toBe('without_diacritics');
    expect(compareNames('Đặng Thị Hương', 'DANG THI HUONG')).toBe('without_diacritics');
    expect(compareNames('Đặng Thị Hương', 'Đặng Thị Hường')).toBe('without_diacritics');
    expect(compareNames('Đặng Thị Hương', 'Đặng Thị Hoa')).toBe('different');
  });
});
