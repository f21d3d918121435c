/** How two renderings of one name compare. */
export type NameMatch = 'exact' | 'without_diacritics' | 'different';

const collapse = (s: string) => s.normalize('NFC').trim().replace(/\s+/g, ' ');

/** Folds Vietnamese diacritics (đ/Đ included, which NFD does not decompose) and case. */
export function foldDiacritics(s: string): string {
  return collapse(s)
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .replace(/đ/g, 'd')
    .replace(/Đ/g, 'D')
    .toLocaleLowerCase('vi');
}

/** Compares names in Unicode NFC first, then with diacritics and case folded, and says which matched. */
export function compareNames(a: string, b: string): NameMatch {
  if (collapse(a) === collapse(b)) return 'exact';
  if (foldDiacritics(a) === foldDiacritics(b)) return 'without_diacritics';
  return 'different';
}
