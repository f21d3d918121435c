/**
 * A land parcel's identity in Viet Nam's cadastre: the commune (or ward) code, the map sheet
 * number (tờ bản đồ số) and the parcel number on it (thửa đất số). Every agency names a parcel
 * this way in its own words; the contracts and adapters use this one shape.
 */
export interface ParcelRef { communeCode: string; mapSheet: number; parcelNumber: number }

export const sameParcel = (a: ParcelRef, b: ParcelRef): boolean =>
  a.communeCode === b.communeCode && a.mapSheet === b.mapSheet && a.parcelNumber === b.parcelNumber;

/** Just the identity of a parcel record (a copy without its other members). */
export const parcelRefOf = (p: ParcelRef): ParcelRef => ({ communeCode: p.communeCode, mapSheet: p.mapSheet, parcelNumber: p.parcelNumber });
