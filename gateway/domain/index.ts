export { parsePersonalId, isPersonalId, personalIdAgreesWith, makePersonalId, provinceCodes, type Sex, type PersonalIdParts } from './personal-id.ts';
export { isTaxCode, isEnterpriseTaxCode, withCheckDigit } from './tax-code.ts';
export { compareNames, foldDiacritics, type NameMatch } from './names.ts';
export { isPrintable, escapeUnprintable, jsonPrintable, UNPRINTABLE_CLASS } from './printable.ts';
export { sameParcel, parcelRefOf, type ParcelRef } from './parcel.ts';
