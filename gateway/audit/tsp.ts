/**
 * RFC 3161 time-stamps, by pkijs (with asn1js): the request the gateway sends a time-stamping
 * authority, the response it gets back, and the check of a token, by the gateway when a token
 * arrives and by the offline verifier later. What is stamped is fixed in `stampedBytes`.
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

const SHA256_OID = '2.16.840.1.101.3.4.2.1';
const TST_INFO_OID = '1.2.840.113549.1.9.16.1.4';
const SIGNED_DATA_OID = '1.2.840.113549.1.7.2';
const EXTENDED_KEY_USAGE_OID = '2.5.29.37';
const TIME_STAMPING_OID = '1.3.6.1.5.5.7.3.8';

/**
 * What a checkpoint's time-stamp covers: the bytes of its compact JWS (ASCII). The authority is
 * sent their SHA-256 as the message imprint. The JWS is the gateway's signed statement
 * `{seq, hash, time}`, so a token says that this statement, and with it the chain up to `seq`,
 * existed at the token's time.
 */
export const stampedBytes = (jws: string): Uint8Array => new TextEncoder().encode(jws);

/** Why a token was not taken: the reason is a code, so tests and reports can name it. */
export type TokenProblem = 'malformed' | 'status' | 'algorithm' | 'imprint' | 'nonce' | 'signature' | 'certificate' | 'time';

export class TimestampError extends Error {
  constructor(readonly problem: TokenProblem, message: string) {
    super(message);
    this.name = 'TimestampError';
  }
}

/** A time-stamping authority's signing certificate, as configured (PEM), parsed once. */
export interface TsaCertificate {
  /** The file it came from, for messages. */
  source: string;
  der: Uint8Array;
  cert: pkijs.Certificate;
}

/** The time-stamping certificates of a PEM file: those with the timeStamping extended key usage. */
export function parseTsaCertificates(pem: string, source: string): TsaCertificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length) throw new Error(`${source}: no PEM certificate`);
  const found: TsaCertificate[] = [];
  for (const block of blocks) {
    const der = new Uint8Array(new X509Certificate(block).raw);
    const cert = pkijs.Certificate.fromBER(der);
    const eku = cert.extensions?.find((e) => e.extnID === EXTENDED_KEY_USAGE_OID);
    const purposes = (eku?.parsedValue as pkijs.ExtKeyUsage | undefined)?.keyPurposes ?? [];
    if (purposes.includes(TIME_STAMPING_OID)) found.push({ source, der, cert });
  }
  if (!found.length) throw new Error(`${source}: no certificate with the timeStamping extended key usage`);
  return found;
}

/** A request for `data`'s time-stamp: SHA-256 imprint, a fresh 128-bit nonce, the signer's certificate asked for. */
export function timeStampRequest(data: Uint8Array): { der: Uint8Array<ArrayBuffer>; nonce: string } {
  const nonce = randomBytes(16);
  // A positive INTEGER in minimal DER: top bit clear, first byte not zero.
  nonce[0] = (nonce[0]! & 0x7f) | 0x01;
  const req = new pkijs.TimeStampReq({
    version: 1,
    messageImprint: new pkijs.MessageImprint({
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: SHA256_OID, algorithmParams: new asn1js.Null() }),
      hashedMessage: new asn1js.OctetString({ valueHex: createHash('sha256').update(data).digest() }),
    }),
    nonce: new asn1js.Integer({ valueHex: nonce }),
    certReq: true,
  });
  return { der: new Uint8Array(req.toSchema().toBER(false)), nonce: nonce.toString('hex') };
}

/** The token of a TimeStampResp (its exact DER bytes), or why there is none. */
export function tokenOfResponse(der: Uint8Array): Uint8Array {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) throw new TimestampError('malformed', 'not a TimeStampResp');
  let resp: pkijs.TimeStampResp;
  try {
    resp = new pkijs.TimeStampResp({ schema: parsed.result });
  } catch {
    throw new TimestampError('malformed', 'not a TimeStampResp');
  }
  const status = resp.status.status;
  if (status !== pkijs.PKIStatus.granted && status !== pkijs.PKIStatus.grantedWithMods) {
    throw new TimestampError('status', `the authority refused the request (PKIStatus ${status})`);
  }
  const token = parsed.result.valueBlock.value[1];
  if (!token) throw new TimestampError('malformed', 'granted, but no token');
  return new Uint8Array(token.valueBeforeDecodeView);
}

/** What a verified token says. */
export interface VerifiedToken {
  genTime: Date;
  /** The nonce, hex, as the authority echoed it (null without one). */
  nonce: string | null;
  serial: string;
  /** Which configured certificate signed it. */
  signer: TsaCertificate;
}

export interface TokenExpectations {
  /** The bytes stamped (`stampedBytes(jws)`). */
  data: Uint8Array;
  /** The certificates it may be signed by; no other is taken, whatever the token carries. */
  certificates: readonly TsaCertificate[];
  /** The nonce sent, when checking a fresh response. */
  nonce?: string;
  /** The token's time may not be earlier than this, less `toleranceSeconds`. */
  notBefore: Date;
  toleranceSeconds: number;
}

const hex = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
/** An INTEGER's hex without leading zero bytes, so the nonce sent and the one echoed compare as numbers. */
const integerHex = (i: asn1js.Integer) => hex(i.valueBlock.valueHexView).replace(/^(00)+(?=.)/, '');

/** The SignedData of a token and the TSTInfo it signs. */
function parseToken(token: Uint8Array): { signed: pkijs.SignedData; tst: pkijs.TSTInfo } {
  try {
    const info = pkijs.ContentInfo.fromBER(new Uint8Array(token));
    if (info.contentType !== SIGNED_DATA_OID) throw new Error('not SignedData');
    const signed = new pkijs.SignedData({ schema: info.content });
    if (signed.encapContentInfo.eContentType !== TST_INFO_OID || !signed.encapContentInfo.eContent) throw new Error('not a TSTInfo');
    return { signed, tst: pkijs.TSTInfo.fromBER(signed.encapContentInfo.eContent.getValue()) };
  } catch {
    throw new TimestampError('malformed', 'not an RFC 3161 time-stamp token');
  }
}

/**
 * Checks a time-stamp token (a CMS SignedData over a TSTInfo): SHA-256 imprint of `data`, the nonce
 * if one is expected, the signature by one of `certificates` (and only those: the certificates the
 * token carries are ignored), that certificate valid at the token's time, and the time itself.
 */
export async function verifyToken(token: Uint8Array, want: TokenExpectations): Promise<VerifiedToken> {
  const { tst } = parseToken(token);
  if (tst.messageImprint.hashAlgorithm.algorithmId !== SHA256_OID) throw new TimestampError('algorithm', 'the imprint is not SHA-256');
  const imprint = hex(tst.messageImprint.hashedMessage.valueBlock.valueHexView);
  if (imprint !== createHash('sha256').update(want.data).digest('hex')) throw new TimestampError('imprint', 'the token stamps other data');
  const nonce = tst.nonce ? integerHex(tst.nonce) : null;
  if (want.nonce !== undefined && nonce !== want.nonce.replace(/^(00)+(?=.)/, '')) throw new TimestampError('nonce', 'the token does not carry the nonce sent');

  const data = want.data.slice().buffer;
  let signer: TsaCertificate | undefined;
  for (const candidate of want.certificates) {
    // The configured certificate, and only it, is where the signer is looked for.
    const { signed } = parseToken(token);
    signed.certificates = [candidate.cert];
    if (await signed.verify({ signer: 0, data, checkChain: false }).catch(() => false)) {
      signer = candidate;
      break;
    }
  }
  if (!signer) throw new TimestampError('signature', 'the token is not signed by a configured time-stamping authority');
  const genTime = tst.genTime;
  if (genTime < signer.cert.notBefore.value || genTime > signer.cert.notAfter.value) throw new TimestampError('certificate', 'the authority\'s certificate was not valid at the token\'s time');
  if (genTime.getTime() < want.notBefore.getTime() - want.toleranceSeconds * 1000) throw new TimestampError('time', 'the token\'s time is before the checkpoint\'s');
  return { genTime, nonce, serial: integerHex(tst.serialNumber), signer };
}
