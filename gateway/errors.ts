/**
 * The one error catalogue. Every failure a client can see is one of these codes; the code is
 * stable, the title is for humans (English, or Vietnamese with `Accept-Language: vi`).
 */
export const catalogue = {
  AUTH_MISSING: { status: 401, title: 'Client assertion missing', vi: 'Thiếu mã xác thực của cơ quan gọi' },
  AUTH_INVALID: { status: 401, title: 'Client assertion invalid', vi: 'Mã xác thực không hợp lệ' },
  AUTH_EXPIRED: { status: 401, title: 'Client assertion expired', vi: 'Mã xác thực đã hết hạn' },
  AUTH_REPLAYED: { status: 401, title: 'Client assertion already used', vi: 'Mã xác thực đã được sử dụng' },
  BODY_HASH_MISMATCH: { status: 401, title: 'Request body does not match the assertion', vi: 'Nội dung yêu cầu không khớp với mã xác thực' },
  FORBIDDEN_SERVICE: { status: 403, title: 'Service not granted to this client', vi: 'Cơ quan không được cấp quyền dịch vụ này' },
  FORBIDDEN_PURPOSE: { status: 403, title: 'Purpose not granted for this service', vi: 'Mục đích sử dụng không được phép' },
  FORBIDDEN_ACTING_PARTY: { status: 403, title: 'Client may not act for this party', vi: 'Cơ quan gọi không được phép thay mặt bên này' },
  CASE_ID_REQUIRED: { status: 400, title: 'Case id required for this purpose', vi: 'Cần mã hồ sơ cho mục đích này' },
  CONSENT_REQUIRED: { status: 401, title: 'Citizen consent required', vi: 'Cần sự đồng ý của công dân' },
  CONSENT_INVALID: { status: 403, title: 'Citizen consent invalid for this request', vi: 'Sự đồng ý của công dân không hợp lệ' },
  REQUEST_INVALID: { status: 400, title: 'Request invalid', vi: 'Yêu cầu không hợp lệ' },
  IDEMPOTENCY_KEY_REQUIRED: { status: 400, title: 'Idempotency-Key header required for this write', vi: 'Cần khóa chống trùng lặp cho thao tác ghi' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key already used with a different request', vi: 'Khóa chống trùng lặp đã dùng cho yêu cầu khác' },
  IDEMPOTENCY_IN_PROGRESS: { status: 409, title: 'A request with this Idempotency-Key is in progress', vi: 'Yêu cầu với khóa này đang được xử lý' },
  SERVICE_UNKNOWN: { status: 404, title: 'Service unknown', vi: 'Dịch vụ không tồn tại' },
  NOT_FOUND: { status: 404, title: 'Not found', vi: 'Không tìm thấy' },
  SUBJECT_NOT_FOUND: { status: 404, title: 'Subject not found at the source', vi: 'Không tìm thấy dữ liệu tại cơ quan nguồn' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed', vi: 'Phương thức không được hỗ trợ' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large', vi: 'Nội dung yêu cầu quá lớn' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type', vi: 'Kiểu dữ liệu không được hỗ trợ' },
  RATE_LIMITED: { status: 429, title: 'Rate limit exceeded', vi: 'Vượt quá số lượng yêu cầu cho phép' },
  INTERNAL: { status: 500, title: 'Internal error', vi: 'Lỗi nội bộ' },
  UPSTREAM_BAD_RESPONSE: { status: 502, title: 'Source system answered outside its contract', vi: 'Hệ thống nguồn trả lời không đúng chuẩn' },
  UPSTREAM_UNAVAILABLE: { status: 503, title: 'Source system unavailable', vi: 'Hệ thống nguồn không sẵn sàng' },
  SHARED_STATE_UNAVAILABLE: { status: 503, title: 'Shared state unavailable; request refused', vi: 'Trạng thái dùng chung không sẵn sàng; yêu cầu bị từ chối' },
  AUDIT_UNAVAILABLE: { status: 503, title: 'Audit log unavailable; nothing released', vi: 'Nhật ký truy cập không sẵn sàng; không dữ liệu nào được trả' },
  AUDIT_ANCHOR_LAG: { status: 503, title: 'Audit log not time-stamped for too long; request refused', vi: 'Nhật ký truy cập chưa được đóng dấu thời gian quá lâu; yêu cầu bị từ chối' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Source system timed out', vi: 'Hệ thống nguồn không trả lời kịp' },
} as const satisfies Record<string, { status: number; title: string; vi: string }>;

export type ErrorCode = keyof typeof catalogue;

/** The base error: a catalogue code, its HTTP status, and whether its detail may reach the client. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** 5xx details stay in the log; the client sees only the catalogue title. */
  readonly expose: boolean;
  readonly detail?: string;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers?: Record<string, string>;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(detail ?? catalogue[code].title, { cause: options?.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = catalogue[code].status;
    this.expose = this.status < 500;
    this.detail = detail;
    this.headers = options?.headers;
  }
}

export const isGatewayError = (e: unknown): e is GatewayError => e instanceof GatewayError;

/** Any thrown value as a catalogue error; unknown failures become INTERNAL. */
export function asGatewayError(e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  return new GatewayError('INTERNAL', undefined, { cause: e });
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  requestId: string;
}

/** RFC 9457 problem document for an error; never carries internals of a 5xx. */
export function toProblem(e: unknown, requestId: string, lang: 'en' | 'vi' = 'en'): Problem {
  const err = asGatewayError(e);
  const entry = catalogue[err.code];
  const problem: Problem = {
    type: `urn:gateway:problem:${err.code.toLowerCase().replaceAll('_', '-')}`,
    title: lang === 'vi' ? entry.vi : entry.title,
    status: err.status,
    code: err.code,
    requestId,
  };
  if (err.expose && err.detail) problem.detail = err.detail;
  return problem;
}

/** Picks the problem language from Accept-Language: Vietnamese when it is preferred, else English. */
export function problemLanguage(acceptLanguage: string | undefined): 'en' | 'vi' {
  if (!acceptLanguage) return 'en';
  const first = acceptLanguage.split(',')[0]?.trim().toLowerCase() ?? '';
  return first.startsWith('vi') ? 'vi' : 'en';
}

/** A problem response as bytes and headers: what every refusal sends, wherever it is answered. */
export interface ProblemResponse { status: number; headers: Record<string, string>; body: Buffer }

/**
 * The one error exit: any thrown value as its problem response, in the caller's language, with
 * the error's own headers (Retry-After on RATE_LIMITED). Every refusal goes out through here.
 */
export function problemResponse(e: unknown, requestId: string, acceptLanguage?: string): ProblemResponse {
  const err = asGatewayError(e);
  return {
    status: err.status,
    headers: { 'Content-Type': 'application/problem+json; charset=utf-8', 'X-Request-Id': requestId, 'Cache-Control': 'no-store', ...err.headers },
    body: Buffer.from(JSON.stringify(toProblem(err, requestId, problemLanguage(acceptLanguage)))),
  };
}

/**
 * How errors are logged (pino's `err` serializer): the catalogue code and status, the name and
 * code of the cause, the detail of a gateway error (written by this code, never a client's or an
 * upstream's text). Messages of foreign errors are left out: they can quote data.
 */
export function serializeError(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { type: typeof e };
  const out: Record<string, unknown> = { name: e.name };
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  if (e instanceof GatewayError) {
    out.status = e.status;
    if (e.detail) out.detail = e.detail;
    if (e.cause !== undefined) out.cause = serializeError(e.cause);
  }
  return out;
}
