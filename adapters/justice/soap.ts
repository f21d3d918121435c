/**
 * SOAP 1.1 plumbing shared by the justice adapter and its simulator: envelopes are built with
 * fast-xml-parser's XMLBuilder (which escapes every value) and read with a parser that never
 * expands entities, after refusing any DTD outright.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';

export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
/** The registry's own target namespace (from its WSDL). */
export const REGISTRY_NS = 'urn:moj.gov.vn:dang-ky-bien-phap-bao-dam:tra-cuu:v1';
/** The registry's one SOAP endpoint. */
export const SOAP_PATH = '/soap/SecuredTransactions';
/** The registry's health route (outside SOAP, never faulted). */
export const STATUS_PATH = '/TrangThai';

export const OPERATIONS = ['TraCuuTheoGiayChungNhan', 'TraCuuTheoThuaDat', 'TraCuuTheoBenBaoDam'] as const;
export type RegistryOperation = (typeof OPERATIONS)[number];

/**
 * A DOCTYPE or entity declaration is how XXE and "billion laughs" get in; no legitimate SOAP
 * message carries one (SOAP 1.1 §3 forbids a DTD), so such a body is refused before parsing.
 */
export const hasDeclarations = (xml: string): boolean => /<!\s*(DOCTYPE|ENTITY)/i.test(xml);

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * With entity processing off the parser leaves even `&amp;` alone; the five predefined entities
 * and character references need no DTD, so decoding them here is safe.
 */
function decodeReferences(text: string): string {
  return text.replace(/&(?:(lt|gt|amp|quot|apos)|#(\d{1,7})|#x([0-9a-fA-F]{1,6}));/g, (whole, name?: string, dec?: string, hex?: string) => {
    if (name) return PREDEFINED[name]!;
    const code = dec ? Number(dec) : parseInt(hex!, 16);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

/** A parser that keeps every value a string, drops namespace prefixes and never processes entities. */
export function createSafeParser(arrayTags: readonly string[] = []): XMLParser {
  const arrays = new Set(arrayTags);
  return new XMLParser({
    removeNSPrefix: true,
    ignoreAttributes: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    parseTagValue: false,
    trimValues: true,
    processEntities: false,
    htmlEntities: false,
    maxNestedTags: 32,
    isArray: (tagName) => arrays.has(tagName),
    tagValueProcessor: (_tag, value) => decodeReferences(value),
  });
}

export type EnvelopeReading =
  | { ok: true; element: string; content: unknown }
  | { ok: false; reason: 'declaration' | 'malformed' | 'not-soap' };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads a SOAP envelope: the first Body entry's local name and content, or why it is not one. */
export function readEnvelope(xml: string, parser: XMLParser): EnvelopeReading {
  if (hasDeclarations(xml)) return { ok: false, reason: 'declaration' };
  if (XMLValidator.validate(xml) !== true) return { ok: false, reason: 'malformed' };
  let doc: unknown;
  try {
    doc = parser.parse(xml);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const envelope = isObject(doc) ? doc.Envelope : undefined;
  const body = isObject(envelope) ? envelope.Body : undefined;
  const element = isObject(body) ? Object.keys(body)[0] : undefined;
  if (!isObject(body) || !element) return { ok: false, reason: 'not-soap' };
  return { ok: true, element, content: body[element] };
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: true, processEntities: true });

function envelope(body: Record<string, unknown>): string {
  return builder.build({
    '?xml': { '@_version': '1.0', '@_encoding': 'utf-8' },
    'soap:Envelope': { '@_xmlns:soap': SOAP_ENV_NS, 'soap:Body': body },
  });
}

/** One Body entry in the registry's namespace (children inherit it as the default namespace). */
export function buildEnvelope(element: string, content: Record<string, unknown>): string {
  return envelope({ [element]: { '@_xmlns': REGISTRY_NS, ...content } });
}

/** A SOAP 1.1 Fault: `Client` when the request was wrong, `Server` when the registry failed. */
export function buildFault(code: 'Client' | 'Server', message: string, detail: { MaLoi: string; MoTa: string }): string {
  return envelope({
    'soap:Fault': {
      faultcode: `soap:${code}`,
      faultstring: message,
      detail: { LoiNghiepVu: { '@_xmlns': REGISTRY_NS, ...detail } },
    },
  });
}
