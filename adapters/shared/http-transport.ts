import http from 'node:http';
import https from 'node:https';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import axios, { AxiosError, AxiosHeaders, CanceledError, type AxiosAdapter, type AxiosResponse, type InternalAxiosRequestConfig } from 'axios';

/**
 * axios's transport for upstream calls: one `http.request` on the keep-alive agent, nothing more.
 * axios keeps its part (config merging, request and response transforms, `validateStatus`,
 * errors); what this replaces is its general-purpose Node adapter (redirect following,
 * decompression, progress streams, proxies), none of which an upstream call may use and which
 * cost more CPU per call than the whole HTTP exchange (figures in the README's performance
 * section). Redirects are never followed: a 3xx is returned as it came.
 *
 * Limits: `timeout` is a deadline on the whole exchange, from the request's start to the answer's
 * last byte (stricter than axios's socket idle timeout: an upstream that drips its answer cannot
 * hold a call past it; the request is destroyed, ETIMEDOUT); `maxContentLength` as in axios (the
 * body is cut and refused with ERR_BAD_RESPONSE, before and after decompression); `signal` (the
 * request is destroyed, ERR_CANCELED). No compression is asked for; a body compressed all the
 * same (gzip, deflate, br) is decoded, since some agency systems compress whatever the client says.
 */
export const nodeHttpTransport: AxiosAdapter = (config) => new Promise<AxiosResponse>((resolve, reject) => {
  const url = new URL(requestUrl(config));
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return reject(new AxiosError(`unsupported protocol ${url.protocol}`, AxiosError.ERR_BAD_REQUEST, config));
  const body = requestBody(config);
  const headers = (config.headers as AxiosHeaders).toJSON() as Record<string, string>;
  if (body !== undefined) headers['Content-Length'] = String(body.byteLength);
  const maxBytes = config.maxContentLength !== undefined && config.maxContentLength > -1 ? config.maxContentLength : Infinity;
  const signal = config.signal as AbortSignal | undefined;

  let settled = false;
  let deadline: NodeJS.Timeout | undefined;
  const settle = () => {
    settled = true;
    clearTimeout(deadline);
    signal?.removeEventListener('abort', onAbort);
  };
  const fail = (e: Error) => {
    if (settled) return;
    settle();
    req.destroy();
    reject(e);
  };
  const onAbort = () => fail(new CanceledError(undefined, undefined, config));
  if (signal?.aborted) return reject(new CanceledError(undefined, undefined, config));

  const req = (secure ? https : http).request(url, {
    method: (config.method ?? 'get').toUpperCase(),
    headers,
    agent: secure ? config.httpsAgent : config.httpAgent,
  }, (res) => {
    const chunks: Buffer[] = [];
    let length = 0;
    res.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) return fail(new AxiosError(`maxContentLength size of ${maxBytes} exceeded`, AxiosError.ERR_BAD_RESPONSE, config, req));
      chunks.push(chunk);
    });
    res.on('aborted', () => fail(new AxiosError('response aborted', AxiosError.ECONNABORTED, config, req)));
    res.on('error', (e) => fail(AxiosError.from(e, (e as { code?: string }).code, config, req)));
    res.on('end', () => {
      if (settled) return;
      settle();
      let raw: Buffer;
      try {
        raw = decode(res.headers['content-encoding'], chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length), maxBytes);
      } catch (e) {
        reject(AxiosError.from(e as Error, AxiosError.ERR_BAD_RESPONSE, config, req));
        return;
      }
      const response: AxiosResponse = {
        data: config.responseType === 'arraybuffer' ? raw : raw.toString('utf8'),
        status: res.statusCode ?? 0,
        statusText: res.statusMessage ?? '',
        headers: new AxiosHeaders(res.headers as Record<string, string>),
        config,
        request: req,
      };
      const valid = !config.validateStatus || config.validateStatus(response.status);
      if (valid) resolve(response);
      else reject(new AxiosError(`Request failed with status code ${response.status}`, response.status >= 500 ? AxiosError.ERR_BAD_RESPONSE : AxiosError.ERR_BAD_REQUEST, config, req, response));
    });
  });
  req.on('error', (e) => fail(AxiosError.from(e, (e as { code?: string }).code, config, req)));
  if (config.timeout) {
    const ms = config.timeout;
    deadline = setTimeout(() => fail(new AxiosError(`timeout of ${ms}ms exceeded`, AxiosError.ETIMEDOUT, config, req)), ms);
  }
  signal?.addEventListener('abort', onAbort, { once: true });
  req.end(body);
});

const ABSOLUTE = /^([a-z][a-z\d+\-.]*:)?\/\//i;

/**
 * The URL a config addresses, as axios builds it (`baseURL` joined to a relative `url`). Only a
 * call with `params` goes through axios's own builder (its serializer and encoding); the rest are
 * joined here, without the config merge that `getUri` does first.
 */
function requestUrl(config: InternalAxiosRequestConfig): string {
  // Named members, not the config itself: getUri merges only a config's own members, and a config
  // may read its defaults through its prototype (upstream-client.ts).
  const { baseURL, url, params, paramsSerializer, allowAbsoluteUrls } = config;
  if (params || paramsSerializer) return axios.getUri({ baseURL, url, params, paramsSerializer, allowAbsoluteUrls });
  const path = config.url ?? '';
  if (!config.baseURL || (ABSOLUTE.test(path) && config.allowAbsoluteUrls !== false)) return path;
  return path ? `${config.baseURL.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}` : config.baseURL;
}

/** The body without its content coding; at most `maxBytes` once decoded (a small compressed answer may expand without bound). */
function decode(coding: string | undefined, body: Buffer, maxBytes: number): Buffer {
  const c = coding?.trim().toLowerCase();
  if (!c || c === 'identity') return body;
  const maxOutputLength = Number.isFinite(maxBytes) ? maxBytes : undefined;
  if (c === 'gzip' || c === 'x-gzip') return gunzipSync(body, { maxOutputLength });
  if (c === 'deflate') return inflateSync(body, { maxOutputLength });
  if (c === 'br') return brotliDecompressSync(body, { maxOutputLength });
  throw new Error(`unsupported content coding ${c}`);
}

/** What axios's request transform left: a string or bytes (JSON, form-encoded, SOAP), or nothing. */
function requestBody(config: InternalAxiosRequestConfig): Buffer | undefined {
  const data: unknown = config.data;
  if (data === undefined || data === null) return undefined;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (data instanceof URLSearchParams) return Buffer.from(data.toString(), 'utf8');
  throw new AxiosError('request body must be a string or bytes', AxiosError.ERR_BAD_REQUEST, config);
}
