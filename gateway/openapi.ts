import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commonDefinitions, CONTRACTS_DIR, type Contract } from './contracts.ts';
import { catalogue, type ErrorCode } from './errors.ts';
import { AUDIT_QUERIES, FILTER_NAMES, type ParamSpec, type QueryEndpoint } from './audit-query.ts';
import { recordSchema } from './audit/record.ts';

/**
 * The OpenAPI 3.1 document of the wire interface (README, wire interface), built from the contracts so it
 * can never drift from what the pipeline validates. OpenAPI 3.1 schemas are JSON Schema 2020-12,
 * so the contract schemas go in as they are; only their `$ref`s move: the contracts reference
 * each other by `$id` (`urn:gateway:contracts:...`), which an OpenAPI document cannot resolve, so
 * every referenced schema becomes a component and every `$ref` a `#/components/schemas/...` pointer.
 */

type Json = Record<string, unknown>;

const COMMON_ID = 'urn:gateway:contracts:common';
const COMPONENT_NAME = /^[a-zA-Z0-9._-]+$/;
/** Keywords whose values are data, not schemas: a `$ref` member inside them is not a reference. */
const DATA_KEYWORDS = new Set(['examples', 'example', 'const', 'enum', 'default']);
/** Statuses every data service can answer with a problem; writes add 409 and 422. */
const DATA_SERVICE_PROBLEMS = [400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504];
const WRITE_PROBLEMS = [409, 422];
/** Authenticated GET endpoints (discovery, audit): no body, no upstream. */
const AUTHENTICATED_GET_PROBLEMS = [400, 401, 403, 429, 500, 503];

export interface OpenApiOptions {
  /** The `aud` clients must use (named in the security scheme's description). */
  gatewayId?: string;
  publicUrl?: string;
  limits?: { maxAssertionLifetimeSeconds: number; clockSkewSeconds: number; maxBodyBytes: number };
  /** The shared definitions (default: contracts/_common/definitions.schema.json). */
  commonDefinitions?: Json;
  /** Services reached through another gateway (federation), by `service/v<major>`: that gateway's id. */
  servedBy?: ReadonlyMap<string, string>;
}

/** Where a schema document's parts land among the components. */
interface Placement {
  /** Component holding the document itself (none for the common definitions). */
  root?: string;
  /** Prefix of the components holding its `$defs`. */
  defsPrefix: string;
}

const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const contractPrefix = (c: Contract, kind: 'request' | 'response') => `${c.meta.service}.v${c.meta.version}.${kind}`;


/** The version and SPDX licence of the package (info.version, info.license). */
function packageInfo(): { version: string; license?: string } {
  try {
    const pkg = JSON.parse(readFileSync(join(CONTRACTS_DIR, '..', 'package.json'), 'utf8')) as { version?: string; license?: string };
    return { version: pkg.version ?? '0.0.0', license: pkg.license };
  } catch {
    return { version: '0.0.0' };
  }
}

/** Turns one `$ref` of the document `baseId` into a pointer into the components. */
function rewriteRef(ref: string, baseId: string, placements: ReadonlyMap<string, Placement>): string {
  const hash = ref.indexOf('#');
  const uri = hash < 0 ? ref : ref.slice(0, hash);
  const fragment = hash < 0 ? '' : ref.slice(hash + 1);
  const place = placements.get(uri === '' ? baseId : uri);
  if (!place) throw new Error(`openapi: $ref "${ref}" in ${baseId} names no contract schema`);
  if (fragment !== '' && !fragment.startsWith('/')) throw new Error(`openapi: $ref "${ref}" in ${baseId}: only JSON pointer fragments are supported`);
  const def = /^\/\$defs\/([^/]+)(\/.*)?$/.exec(fragment);
  if (def) return `#/components/schemas/${place.defsPrefix}${def[1]}${def[2] ?? ''}`;
  if (!place.root) throw new Error(`openapi: $ref "${ref}" in ${baseId} points into no component`);
  return `#/components/schemas/${place.root}${fragment}`;
}

/** Keywords whose members are names (of properties, definitions), each holding a schema. */
const NAME_MAPS = new Set(['properties', 'patternProperties', 'dependentSchemas', '$defs', 'definitions']);

/**
 * A deep copy of a schema with every `$ref` rewritten; data keywords are copied as they are, and
 * the members of name maps are schemas even when named like a keyword (a property `default`).
 */
function rewriteSchema(value: unknown, baseId: string, placements: ReadonlyMap<string, Placement>, keysAreNames = false): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteSchema(v, baseId, placements));
  if (!value || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (keysAreNames) out[k] = rewriteSchema(v, baseId, placements);
    else if (k === '$ref' && typeof v === 'string') out[k] = rewriteRef(v, baseId, placements);
    else if (DATA_KEYWORDS.has(k)) out[k] = structuredClone(v);
    else out[k] = rewriteSchema(v, baseId, placements, NAME_MAPS.has(k));
  }
  return out;
}

/**
 * Every schema as components: the common definitions under their own names, each contract's
 * request and response as `<service>.v<major>.<request|response>`, and their local `$defs` as
 * `<service>.v<major>.<kind>.<name>`.
 */
function contractComponents(contracts: Iterable<Contract>, common: Json): Json {
  const documents: { id: string; schema: Json; place: Placement }[] = [
    { id: COMMON_ID, schema: common, place: { defsPrefix: '' } },
  ];
  for (const c of contracts) {
    for (const kind of ['request', 'response'] as const) {
      const schema = kind === 'request' ? c.requestSchema : c.responseSchema;
      const name = contractPrefix(c, kind);
      const id = typeof schema.$id === 'string' ? schema.$id : `urn:gateway:contracts:${c.meta.service}:v${c.meta.version}:${kind}`;
      documents.push({ id, schema, place: { root: name, defsPrefix: `${name}.` } });
    }
  }
  const placements = new Map(documents.map((d) => [d.id, d.place]));
  const schemas: Json = {};
  const add = (name: string, schema: unknown) => {
    if (!COMPONENT_NAME.test(name)) throw new Error(`openapi: "${name}" is not a valid component name`);
    if (name in schemas) throw new Error(`openapi: component "${name}" defined twice`);
    schemas[name] = schema;
  };
  for (const { id, schema, place } of documents) {
    // $id would re-base the pointers inside; $schema is the document's jsonSchemaDialect already.
    const { $id: _id, $schema: _dialect, $defs, ...body } = rewriteSchema(schema, id, placements) as Json;
    for (const [name, def] of Object.entries(($defs ?? {}) as Json)) add(`${place.defsPrefix}${name}`, def);
    if (place.root) add(place.root, body);
  }
  return schemas;
}

/** The problem document (RFC 9457) with every catalogue code. */
function problemSchema(): Json {
  return {
    type: 'object',
    description: 'RFC 9457 problem details. `code` is stable; `title` is English, or Vietnamese with `Accept-Language: vi`. A 5xx never carries upstream internals.',
    required: ['type', 'title', 'status', 'code', 'requestId'],
    properties: {
      type: { type: 'string', format: 'uri', examples: ['urn:gateway:problem:forbidden-service'] },
      title: { type: 'string' },
      status: { type: 'integer', minimum: 400, maximum: 599 },
      code: { enum: Object.keys(catalogue) },
      detail: { type: 'string', description: 'Present on 4xx only.' },
      requestId: { type: 'string', format: 'uuid', description: 'Also the id of the audit entry, when one was written.' },
    },
  };
}

const codesWithStatus = (status: number) => (Object.keys(catalogue) as ErrorCode[]).filter((c) => catalogue[c].status === status);

/** What a public endpoint can answer besides its own statuses: another method (405) or a mistyped path (404). */
const PUBLIC_PROBLEM_CODES: ErrorCode[] = ['METHOD_NOT_ALLOWED', 'NOT_FOUND'];

/**
 * One reusable problem response per status an operation names, each naming the codes it can
 * carry, and `ClientProblem` for the public endpoints' `4XX`.
 */
function problemResponses(statuses: readonly number[]): Json {
  const perStatus = Object.fromEntries([...statuses].sort((a, b) => a - b).map((status) => {
    const codes = codesWithStatus(status);
    const headers: Json = { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' } };
    if (status === 429 || status === 503) headers['Retry-After'] = { $ref: '#/components/headers/Retry-After' };
    return [`Problem${status}`, {
      description: `Problem: ${codes.map((c) => `\`${c}\` (${catalogue[c].title})`).join(', ')}.`,
      headers,
      content: { 'application/problem+json': { schema: { allOf: [schemaRef('Problem'), { properties: { status: { const: status }, code: { enum: codes } } }] } } },
    }];
  }));
  return {
    ...perStatus,
    ClientProblem: {
      description: `Problem: ${PUBLIC_PROBLEM_CODES.map((c) => `\`${c}\` (${catalogue[c].title})`).join(', ')}; every client error of the gateway is a problem document.`,
      headers: { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' } },
      content: { 'application/problem+json': { schema: schemaRef('Problem') } },
    },
  };
}

/** Every status some operation answers with a problem. */
const PROBLEM_STATUSES = [...new Set([...DATA_SERVICE_PROBLEMS, ...WRITE_PROBLEMS, ...AUTHENTICATED_GET_PROBLEMS])];

const problemRefs = (statuses: number[]) => Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/Problem${s}` }]));

function securityScheme(o: OpenApiOptions): Json {
  const lifetime = o.limits?.maxAssertionLifetimeSeconds ?? 300;
  const skew = o.limits?.clockSkewSeconds ?? 30;
  return {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: [
      'A per-request client assertion: a JWT signed with the calling agency\'s own private key (ES256 or EdDSA, `kid` in the header; `none`, HMAC algorithms and unknown `kid`s are refused). Claims:',
      '- `iss`: the client id;',
      `- \`aud\`: the gateway id${o.gatewayId ? ` (\`${o.gatewayId}\`)` : ''};`,
      `- \`iat\`, \`exp\`: \`exp\` at most ${lifetime} s after \`iat\`; a clock skew of ${skew} s is tolerated;`,
      '- `jti`: single use, a replay is refused (`AUTH_REPLAYED`);',
      '- `purpose`: a registered purpose code, required on data services;',
      '- `case_id`: the dossier number, required when the purpose says so (`CASE_ID_REQUIRED`);',
      '- `user_id`: the officer, when a person initiated the request;',
      '- `body_sha256`: base64url SHA-256 of the exact request body bytes (of the empty string for a request without a body).',
      'The public keys of each client come from the gateway config (inline JWKS or a JWKS URL).',
    ].join('\n'),
  };
}

function sharedParameters(): Json {
  return {
    'X-Citizen-Consent': {
      name: 'X-Citizen-Consent', in: 'header', required: true,
      description: 'Citizen consent: a JWT issued by the trusted national identity provider; `sub` = the citizen\'s personal id, `aud` = the gateway id, `azp` = the portal\'s client id, `scope` = the consented field groups, short `exp`. Data about anyone other than `sub` is refused.',
      schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$' },
    },
    'Idempotency-Key': {
      name: 'Idempotency-Key', in: 'header', required: true,
      description: 'A unique key per write. A retry with the same key and the same body gets the first answer; the same key with another body is `IDEMPOTENCY_KEY_REUSED`, and with the first still running `IDEMPOTENCY_IN_PROGRESS`.',
      schema: { type: 'string', minLength: 1, maxLength: 255 },
    },
    'Accept-Language': {
      name: 'Accept-Language', in: 'header', required: false,
      description: '`vi` gives Vietnamese problem titles for citizen-facing screens.',
      schema: { type: 'string', examples: ['vi', 'en'] },
    },
  };
}

function sharedHeaders(): Json {
  return {
    'X-Request-Id': {
      description: 'The request id, also the id of its audit entry.',
      schema: { type: 'string', format: 'uuid' },
    },
    'X-Gateway-Signature': {
      description: 'Detached compact JWS (RFC 7515 appendix F, `header..signature`) over the exact response body bytes, verifiable with `/.well-known/jwks.json`. Its protected header carries `kid`, `alg`, `iat`, `request_id` and `request_sha256` (base64url SHA-256 of the request body), binding the answer to its question.',
      schema: { type: 'string', pattern: '^[A-Za-z0-9_-]+\\.\\.[A-Za-z0-9_-]+$' },
    },
    'Retry-After': {
      description: 'Seconds until the rate limit allows another request (429), or until the next attempt to time-stamp the audit log (503 AUDIT_ANCHOR_LAG).',
      schema: { type: 'integer', minimum: 0 },
    },
  };
}

/** Schemas of the gateway's own endpoints (discovery, audit, operations). */
function gatewaySchemas(): Json {
  const str = { type: 'string' };
  const nullableStr = { type: ['string', 'null'] };
  return {
    Problem: problemSchema(),
    ServiceList: {
      type: 'object', required: ['client', 'services'],
      properties: {
        client: str,
        auditRole: { type: 'boolean' },
        services: {
          type: 'array',
          items: {
            type: 'object', required: ['service', 'version', 'path'],
            properties: {
              service: str, version: { type: 'integer' }, title: str, path: str,
              purposes: { type: 'array', items: { type: 'object', properties: { code: str, legalBasis: str, caseIdRequired: { type: 'boolean' } } } },
              fieldGroups: { type: 'array', items: str },
              consentRequired: { type: 'boolean' }, idempotencyKeyRequired: { type: 'boolean' },
              gateway: { ...str, description: 'Present when the service is reached through another gateway (federation): its gateway id.' },
            },
          },
        },
      },
    },
    ServiceDescription: {
      type: 'object', required: ['service', 'version', 'path', 'requestSchema', 'responseSchema'],
      properties: {
        service: str, version: { type: 'integer' }, title: str, description: str, path: str,
        agencies: { type: 'array', items: str },
        fieldGroups: { type: 'object', additionalProperties: { type: 'array', items: str } },
        consent: { type: 'boolean' }, write: { type: 'boolean' },
        requestSchema: { type: 'object', description: 'The contract\'s JSON Schema 2020-12, with its `urn:gateway:contracts:` references.' },
        responseSchema: { type: 'object' },
        contractSha256: { ...str, description: 'SHA-256 (hex) of the RFC 8785 JSON of this document without `path`, `contractSha256` and `gateway`: what another gateway pins (`upstreams.<agency>.gateway.services[].contractSha256`).' },
        gateway: { ...str, description: 'Present when the service is reached through another gateway (federation): its gateway id.' },
      },
    },
    Jwks: {
      type: 'object', required: ['keys'],
      properties: { keys: { type: 'array', items: { type: 'object', required: ['kty'], properties: { kty: str, kid: str, alg: str, use: str, crv: str, x: str, y: str } } } },
    },
    GatewayConfiguration: {
      type: 'object', required: ['gateway_id', 'jwks_uri', 'openapi_uri'],
      description: 'What a client developer needs to start, as RFC 8414 does for OAuth servers (snake_case members).',
      properties: {
        gateway_id: str, jwks_uri: str, openapi_uri: str, services_endpoint: str, service_endpoint_template: str,
        audit_endpoints: { type: 'object', additionalProperties: str },
        assertion_signing_alg_values_supported: { type: 'array', items: str },
        assertion_required_claims: { type: 'array', items: str },
        assertion_optional_claims: { type: 'array', items: str },
        max_assertion_lifetime_seconds: { type: 'integer' },
        clock_skew_seconds: { type: 'integer' },
        max_body_bytes: { type: 'integer' },
      },
    },
    UpstreamCall: {
      type: 'object',
      properties: {
        agency: str, operation: str, outcome: { enum: ['ok', 'not_found', 'error'] }, errorCode: nullableStr,
        latencyMs: { type: 'integer' }, reference: nullableStr,
        gateway: { ...str, description: 'A hop to another gateway: its gateway id (absent for an agency system).' },
        remoteRequestId: { ...str, description: 'The id the other gateway gave the request: its audit entry\'s id, from its signed answer.' },
        answerSha256: { ...str, description: 'SHA-256 (hex) of the exact answer bytes the other gateway signed: its entry\'s `responseSha256`.' },
      },
    },
    AuditEntry: recordSchema('One hash-chained audit record. `hash` = SHA-256 (hex) of the RFC 8785 canonical JSON of the entry without `hash`; subjects are HMAC-SHA-256 pseudonyms.'),
    AuditPage: {
      type: 'object', required: ['entries', 'nextCursor'],
      properties: { entries: { type: 'array', items: schemaRef('AuditEntry') }, nextCursor: { ...nullableStr, description: 'Pass as `cursor` for the next (older) page; null at the end.' } },
    },
    VerifyReport: {
      type: 'object', required: ['ok'],
      description: 'The chain re-checked: hashes, links, contiguous seqs and signed checkpoints.',
      properties: {
        ok: { type: 'boolean' }, entries: { type: 'integer' }, headSeq: { type: 'integer' }, verifiedUpTo: { type: 'integer' },
        firstBadSeq: { type: ['integer', 'null'] }, problem: nullableStr,
        anchoring: {
          type: 'object', description: 'Present when a time-stamping authority is configured: the hot store\'s time-stamped checkpoints, each token checked and each stamped hash against the chain. A bad token is `timestamp_invalid`, a chain that disagrees with a stamped checkpoint `timestamp_contradiction`.',
          properties: {
            stamped: { type: 'integer' }, unstamped: { type: 'integer' }, anchoredUpTo: { type: 'integer' },
            lastAnchor: { type: ['object', 'null'], properties: { seq: { type: 'integer' }, tsa: str, time: { type: 'string', format: 'date-time' } } },
          },
        },
        archive: {
          type: 'object', description: 'Present when segments are archived: they were checked with the hot store as one chain.',
          properties: { segments: { type: 'integer' }, entries: { type: 'integer' }, segment: { ...nullableStr, description: 'The data file that holds firstBadSeq, if a segment does.' } },
        },
      },
    },
    AccessLog: {
      type: 'object', required: ['entries', 'nextCursor'],
      description: 'The citizen\'s own view of who accessed their data, when and why, newest first. Accesses for a confidential purpose appear once its confidentiality period ends.',
      properties: {
        entries: {
          type: 'array',
          items: {
            type: 'object', required: ['reference', 'time', 'agency', 'service', 'outcome'],
            properties: {
              reference: { type: 'string', description: 'The audit entry id, to quote in a complaint.' }, time: { type: 'string', format: 'date-time' },
              agency: { type: 'object', description: 'The agency that asked; for a request another gateway made on an agency\'s behalf, that agency.', properties: { id: str, name: str } },
              via: { type: 'object', description: 'Present when another gateway made the request on the agency\'s behalf: that gateway.', properties: { id: str, name: str } },
              service: str,
              purpose: { type: ['object', 'null'], properties: { code: str, legalBasis: nullableStr } },
              caseId: nullableStr, fields: { type: 'array', items: str }, outcome: { enum: ['released', 'denied', 'failed'] },
            },
          },
        },
        nextCursor: nullableStr,
      },
    },
    ArchiveList: {
      type: 'object', required: ['retention', 'segments', 'hot'],
      description: 'The sealed archive segments, oldest first, and where the hot store starts. Entries past `audit.retention.hotDays` live in the segments (gzip NDJSON, each line as /audit/export writes it, with a manifest); `gateway audit verify --archive DIR` checks them with an export of the hot store as one chain.',
      properties: {
        retention: { type: 'object', properties: { hotDays: { type: ['integer', 'null'], description: 'Null: retention off, nothing is archived.' } } },
        segments: {
          type: 'array',
          items: {
            type: 'object', required: ['firstSeq', 'lastSeq', 'entries', 'prevHash', 'lastHash', 'file', 'fileSha256', 'sealedAt', 'checkpoint', 'timestamp', 'present'],
            properties: {
              firstSeq: { type: 'integer' }, lastSeq: { type: 'integer' }, entries: { type: 'integer' },
              prevHash: { ...str, description: 'The hash the segment chains from (the previous segment\'s lastHash, 0…0 for the first).' },
              lastHash: { ...str, description: 'The hash of entry lastSeq, held by the signed checkpoint the segment ends at.' },
              file: str, manifest: str, fileSha256: str, sealedAt: { type: 'string', format: 'date-time' },
              checkpoint: { type: ['object', 'null'], properties: { seq: { type: 'integer' }, time: { type: 'string', format: 'date-time' } } },
              timestamp: { type: ['object', 'null'], description: 'The RFC 3161 time-stamp of that checkpoint; null when no authority is configured.', properties: { tsa: str, genTime: { type: 'string', format: 'date-time' } } },
              present: { type: 'boolean', description: 'False when its manifest or data file is missing from the archive directory.' },
            },
          },
        },
        hot: { type: 'object', properties: { firstSeq: { type: ['integer', 'null'] }, oldestTime: { type: ['string', 'null'], format: 'date-time' } } },
      },
    },
    CheckpointList: {
      type: 'object', required: ['checkpoints'],
      properties: {
        total: { type: 'integer' },
        checkpoints: { type: 'array', items: { type: 'object', required: ['seq', 'hash', 'time', 'jws', 'timestamp'], properties: { seq: { type: 'integer' }, hash: str, time: { type: 'string', format: 'date-time' }, jws: { type: 'string', description: 'Compact JWS over {seq, hash, time}, verifiable with /.well-known/jwks.json.' }, timestamp: schemaRef('CheckpointTimestamp') } } },
      },
    },
    CheckpointTimestamp: {
      type: ['object', 'null'], required: ['tsa', 'token', 'time'],
      description: 'The checkpoint\'s RFC 3161 time-stamp; null while it waits for one (or when no time-stamping authority is configured).',
      properties: {
        tsa: { type: 'string', format: 'uri', description: 'The time-stamping authority that issued it.' },
        token: { type: 'string', contentEncoding: 'base64', description: 'The TimeStampToken (CMS SignedData over a TSTInfo), DER, base64. Its message imprint is the SHA-256 of the bytes of `jws`.' },
        time: { type: 'string', format: 'date-time', description: 'The token\'s genTime.' },
      },
    },
    EncryptedAnswer: {
      type: 'string', pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
      description: 'For a client configured with `encryptResponses`: the answer as a compact JWE (RFC 7516; `ECDH-ES+A256KW`, `A256GCM`, `kid` of the client\'s `use: "enc"` key). `X-Gateway-Signature` covers the decrypted bytes.',
    },
    Health: { type: 'object', required: ['status'], properties: { status: str } },
    Readiness: {
      type: 'object', required: ['status'],
      properties: {
        status: { enum: ['ready', 'not_ready'] }, checks: { type: 'object', additionalProperties: str }, breakers: { type: 'object', additionalProperties: { enum: ['closed', 'half_open', 'open'] } },
        anchoring: {
          type: 'object', required: ['state', 'lagSeconds', 'unstamped', 'maxLagSeconds'],
          description: 'Time-stamps on the audit checkpoints; `over_max_lag` (and only it) makes the gateway not ready.',
          properties: {
            state: { enum: ['off', 'ok', 'lagging', 'over_max_lag'] }, lagSeconds: { type: 'number', description: 'Seconds since the oldest checkpoint still without a time-stamp was signed.' },
            unstamped: { type: 'integer' }, maxLagSeconds: { type: ['integer', 'null'] },
          },
        },
      },
    },
  };
}

const json = (schema: Json) => ({ 'application/json': { schema } });
const ok = (description: string, schema: Json, headers?: Json) => ({ description, ...(headers ? { headers } : {}), content: json(schema) });
const PUBLIC = [] as const;

/** `POST /services/{id}/v{major}` of one contract. */
function serviceOperation(c: Contract, gateway?: string): Json {
  const parameters: Json[] = [{ $ref: '#/components/parameters/Accept-Language' }];
  if (c.meta.consent) parameters.push({ $ref: '#/components/parameters/X-Citizen-Consent' });
  if (c.meta.write) parameters.push({ $ref: '#/components/parameters/Idempotency-Key' });
  const groups = Object.entries(c.meta.fieldGroups).map(([g, fields]) => `\`${g}\` (${fields.join(', ')})`).join('; ');
  return {
    post: {
      operationId: `${c.meta.service}.v${c.meta.version}`,
      tags: ['services'],
      summary: c.meta.title,
      description: [c.meta.description, `Sources: ${c.meta.agencies.join(', ')}.`, groups ? `Field groups: ${groups}.` : '',
        gateway ? `Served through the gateway \`${gateway}\` (federation): its contract, pinned and checked at start; its signed answer verified before anything is released.` : ''].filter(Boolean).join('\n\n'),
      ...(gateway ? { 'x-gateway': gateway } : {}),
      parameters,
      requestBody: { required: true, content: json(schemaRef(contractPrefix(c, 'request'))) },
      responses: {
        200: {
          ...ok('The contract\'s answer, signed, after its audit entry committed.', schemaRef(contractPrefix(c, 'response')), {
            'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' },
            'X-Gateway-Signature': { $ref: '#/components/headers/X-Gateway-Signature' },
          }),
          content: { ...json(schemaRef(contractPrefix(c, 'response'))), 'application/jose': { schema: schemaRef('EncryptedAnswer') } },
        },
        ...problemRefs(c.meta.write ? [...DATA_SERVICE_PROBLEMS, ...WRITE_PROBLEMS].sort((a, b) => a - b) : DATA_SERVICE_PROBLEMS),
      },
    },
  };
}

/**
 * One query parameter from the table the gateway parses queries with, so the two cannot drift. A
 * count is documented as the integer it is; the gateway takes it in plain digits only.
 */
function queryParameter(name: string, spec: ParamSpec): Json {
  const fallback = spec.default === undefined ? {} : { default: spec.default };
  const schema = spec.range ? { type: 'integer', ...spec.range, ...fallback } : { ...structuredClone(spec.schema), ...fallback };
  return { name, in: 'query', required: false, description: `${spec.description} One value; must be ${spec.must}.`, schema };
}

/** The query parameters of an endpoint, in the table's order (the filters first); any other parameter is refused. */
function queryParameters(endpoint: QueryEndpoint, names: readonly string[] = Object.keys(AUDIT_QUERIES[endpoint])): Json[] {
  const params = AUDIT_QUERIES[endpoint] as Record<string, ParamSpec>;
  return names.map((name) => queryParameter(name, params[name]!));
}

const auditFilterParameters = (): Json[] => queryParameters('entries', FILTER_NAMES);

/** An authenticated GET run through the pipeline (audited like any request). */
const authenticatedGet = (operationId: string, tag: string, summary: string, okResponse: Json, parameters: Json[] = []) => {
  // A streamed answer (it declares its own headers) is not signed; every other JSON answer is.
  const signature = okResponse.headers ? {} : { 'X-Gateway-Signature': { $ref: '#/components/headers/X-Gateway-Signature' } };
  const headers = { 'X-Request-Id': { $ref: '#/components/headers/X-Request-Id' }, ...signature, ...(okResponse.headers as Json | undefined) };
  return {
    get: {
      operationId, tags: [tag], summary, parameters,
      responses: { 200: { ...okResponse, headers }, ...problemRefs(AUTHENTICATED_GET_PROBLEMS) },
    },
  };
};

const publicGet = (operationId: string, tag: string, summary: string, responses: Json, parameters: Json[] = []) => ({
  get: { operationId, tags: [tag], summary, security: PUBLIC, ...(parameters.length ? { parameters } : {}), responses: { ...responses, '4XX': { $ref: '#/components/responses/ClientProblem' } } },
});

/** The gateway's own GET endpoints. */
function gatewayPaths(): Json {
  return {
    '/services': authenticatedGet('listServices', 'discovery', 'The services this client may call, with versions, granted purposes and field groups', ok('Granted services.', schemaRef('ServiceList'))),
    '/services/{serviceId}/v{major}': publicGet('describeService', 'discovery', 'A service version\'s request and response schemas', {
      200: ok('The contract.', schemaRef('ServiceDescription')),
      404: { $ref: '#/components/responses/Problem404' },
    }, [
      { name: 'serviceId', in: 'path', required: true, schema: { type: 'string' }, examples: { identity: { value: 'population.identity' } } },
      { name: 'major', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } },
    ]),
    '/openapi.json': publicGet('openApi', 'discovery', 'This document', { 200: ok('OpenAPI 3.1, built from the contracts.', { type: 'object' }) }),
    '/.well-known/jwks.json': publicGet('gatewayJwks', 'discovery', 'The gateway\'s public signing keys (response signatures, audit checkpoints)', { 200: ok('JWKS.', schemaRef('Jwks')) }),
    '/.well-known/gateway-configuration': publicGet('gatewayConfiguration', 'discovery', 'Gateway metadata for client developers', { 200: ok('Metadata.', schemaRef('GatewayConfiguration')) }),
    '/audit/entries': authenticatedGet('auditEntries', 'audit', 'Audit entries, newest first, filtered, with cursor paging (audit grant)', ok('A page of entries.', schemaRef('AuditPage')), [
      ...auditFilterParameters(), ...queryParameters('entries', ['limit', 'cursor']),
    ]),
    '/audit/verify': authenticatedGet('auditVerify', 'audit', 'Re-check the hash chain and its signed checkpoints (audit grant)', ok('The verification report.', schemaRef('VerifyReport'))),
    '/audit/archives': authenticatedGet('auditArchives', 'audit', 'The sealed archive segments of the chain and where the hot store starts (audit grant)', ok('Archive segments.', schemaRef('ArchiveList'))),
    '/audit/checkpoints': authenticatedGet('auditCheckpoints', 'audit', 'The signed checkpoints of the chain head, oldest first (audit grant)', ok('Checkpoints.', schemaRef('CheckpointList')), queryParameters('checkpoints')),
    '/audit/export': authenticatedGet('auditExport', 'audit', 'Export entries as NDJSON or CSV, oldest first, for offline verification (audit grant)', {
      description: 'The entries, one per line, streamed and not signed: each NDJSON line is the stored record, so the chain can be re-checked with any RFC 8785 library.',
      headers: {
        'X-Audit-Head-Seq': { description: 'The chain head when the export opened; an unfiltered export ending below it was cut short.', schema: { type: 'integer' } },
        'X-Audit-Head': { description: 'That head signed by the gateway (compact JWS over {seq, hash, time}, as a checkpoint); an NDJSON export also ends with it as its last line, {"head": {seq, hash, time, jws}}.', schema: { type: 'string' } },
      },
      content: {
        'application/x-ndjson': { schema: { type: 'string', description: 'One AuditEntry JSON object per line, then the signed head: {"head": {seq, hash, time, jws}}.' } },
        'text/csv': { schema: { type: 'string' } },
      },
    }, [...auditFilterParameters(), ...queryParameters('export', ['format'])]),
    '/citizen/access-log': authenticatedGet('citizenAccessLog', 'citizen', 'Who accessed the consenting citizen\'s data, when and why', ok('The citizen\'s access log.', schemaRef('AccessLog')), [
      { $ref: '#/components/parameters/X-Citizen-Consent' }, { $ref: '#/components/parameters/Accept-Language' }, ...queryParameters('accessLog'),
    ]),
    '/healthz': publicGet('healthz', 'operations', 'Liveness', { 200: ok('The process answers.', schemaRef('Health')) }),
    '/readyz': publicGet('readyz', 'operations', 'Readiness: the audit store takes writes and not every upstream breaker is open', {
      200: ok('Ready.', schemaRef('Readiness')),
      503: ok('Not ready.', schemaRef('Readiness')),
    }),
    '/metrics': publicGet('metrics', 'operations', 'Prometheus metrics of this instance', {
      200: { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } },
    }),
  };
}

function mergeSchemas(own: Json, fromContracts: Json): Json {
  const clash = Object.keys(own).find((name) => name in fromContracts);
  if (clash) throw new Error(`openapi: contract component "${clash}" clashes with a gateway schema`);
  return { ...own, ...fromContracts };
}

/**
 * Builds the OpenAPI 3.1 document from the loaded contracts (any set of contract folders).
 * Throws at start-up when a contract's `$ref` points nowhere.
 */
export function buildOpenApi(contracts: Map<string, Contract>, options: OpenApiOptions = {}): Json {
  const { version, license } = packageInfo();
  const ordered = [...contracts.values()].sort((a, b) => a.meta.service.localeCompare(b.meta.service) || a.meta.version - b.meta.version);
  const paths: Json = {};
  for (const c of ordered) paths[`/services/${c.meta.service}/v${c.meta.version}`] = serviceOperation(c, options.servedBy?.get(`${c.meta.service}/v${c.meta.version}`));
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Interagency data-sharing gateway',
      version,
      ...(license ? { license: { name: license, identifier: license } } : {}),
      description: 'Once-only access to population, land, tax and secured-transactions data behind signed, audited, versioned contracts. Every data service is `POST /services/{serviceId}/v{major}`, so personal identifiers never appear in URLs. Answers are minimised to the granted field groups, committed to a hash-chained audit log before release, and signed (`X-Gateway-Signature`).',
    },
    ...(options.publicUrl ? { servers: [{ url: options.publicUrl, description: 'This gateway (`publicUrl`, else the address it listens on).' }] } : {}),
    tags: [
      { name: 'services', description: 'Data services, one per contract.' },
      { name: 'discovery', description: 'What a client may call and how to verify answers.' },
      { name: 'audit', description: 'The audit log, for clients with the audit grant.' },
      { name: 'citizen', description: 'The citizen\'s own view, with consent.' },
      { name: 'operations', description: 'Health and metrics.' },
    ],
    security: [{ clientAssertion: [] }],
    paths: { ...paths, ...gatewayPaths() },
    components: {
      securitySchemes: { clientAssertion: securityScheme(options) },
      parameters: sharedParameters(),
      headers: sharedHeaders(),
      responses: problemResponses(PROBLEM_STATUSES),
      schemas: mergeSchemas(gatewaySchemas(), contractComponents(ordered, options.commonDefinitions ?? commonDefinitions())),
    },
  };
}
