import { isPersonalId } from './personal-id.ts';

const WEIGHTS = [31, 29, 23, 19, 17, 13, 7, 5, 3];

/**
 * Tax code (mã số thuế): 10 digits, or 13 as `NNNNNNNNNN-NNN` with a branch 001–999.
 * The 10th digit is 10 − (Σ weights × digits 1–9 mod 11); remainder 0 is never issued.
 */
export function isEnterpriseTaxCode(code: string): boolean {
  const m = /^(\d{10})(?:-(\d{3}))?$/.exec(code);
  if (!m) return false;
  const base = m[1]!;
  if (m[2] !== undefined && m[2] === '000') return false;
  if (/^0{7}$/.test(base.slice(2, 9))) return false;
  const sum = WEIGHTS.reduce((acc, w, i) => acc + w * Number(base[i]), 0);
  const remainder = sum % 11;
  if (remainder === 0) return false;
  return 10 - remainder === Number(base[9]);
}

/** Since 1 July 2025 an individual's 12-digit personal id serves as their tax code. */
export const isTaxCode = (code: string): boolean => isEnterpriseTaxCode(code) || isPersonalId(code);

/** Completes 9 leading digits with their check digit; null when no valid check digit exists. */
export function withCheckDigit(nineDigits: string): string | null {
  if (!/^\d{9}$/.test(nineDigits) || /^0{7}$/.test(nineDigits.slice(2, 9))) return null;
  const sum = WEIGHTS.reduce((acc, w, i) => acc + w * Number(nineDigits[i]), 0);
  const remainder = sum % 11;
  if (remainder === 0 || 10 - remainder > 9) return null;
  return `${nineDigits}${10 - remainder}`;
}
