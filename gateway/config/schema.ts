/**
 * The one config schema (JSON Schema 2020-12 for ajv): defaults filled in, unknown keys refused.
 * Operators write it as JSON or YAML; `${NAME}` in a string is replaced by the environment
 * variable NAME, so secrets need not sit in the file.
 */
import { agencies, type AgencyPlugin } from '../../adapters/index.ts';

const jwks = {
  type: 'object',
  required: ['keys'],
  properties: { keys: { type: 'array', minItems: 1, items: { type: 'object', required: ['kty'] } } },
} as const;

const keySource = {
  type: 'object',
  additionalProperties: false,
  properties: {
    jwks,
    jwksUrl: { type: 'string', format: 'uri' },
    refetchCooldownSeconds: { type: 'integer', minimum: 1, description: 'this client\'s clientKeys.refetchCooldownSeconds' },
    maxAgeSeconds: { type: 'integer', minimum: 1, description: 'this client\'s clientKeys.maxAgeSeconds' },
  },
  oneOf: [{ required: ['jwks'] }, { required: ['jwksUrl'] }],
} as const;

const resilience = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    timeoutMs: { type: 'integer', minimum: 1, default: 3000 },
    retries: { type: 'integer', minimum: 0, maximum: 5, default: 2 },
    retryBaseDelayMs: { type: 'integer', minimum: 1, default: 50 },
    retryMaxDelayMs: { type: 'integer', minimum: 1, default: 500 },
    breakerThreshold: { type: 'integer', minimum: 1, default: 5, description: 'consecutive failures that open the breaker' },
    breakerHalfOpenAfterMs: { type: 'integer', minimum: 1, default: 10000 },
    maxConcurrent: { type: 'integer', minimum: 1, default: 64 },
    maxQueued: { type: 'integer', minimum: 0, default: 256 },
    maxResponseBytes: { type: 'integer', minimum: 1024, default: 8388608, description: 'an upstream answer larger than this is refused' },
  },
} as const;

/**
 * Another gateway as the upstream of an agency (federation, gateway/federation/): this gateway calls
 * the remote's contract endpoints as one of its clients, and verifies every answer it signed.
 */
const remoteGateway = {
  type: 'object', additionalProperties: false, required: ['url', 'gatewayId', 'clientId', 'services'],
  properties: {
    url: { type: 'string', format: 'uri', description: 'the remote gateway\'s base URL' },
    gatewayId: { type: 'string', minLength: 1, description: 'its gateway id: the `aud` of this gateway\'s assertions' },
    jwks: { ...jwks, description: 'its response-signing keys, inline' },
    jwksUrl: { type: 'string', format: 'uri', description: 'where it publishes them; default <url>/.well-known/jwks.json' },
    clientId: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'this gateway\'s client id at the remote (`iss`)' },
    privateJwkFile: { type: 'string', description: 'this gateway\'s client key at the remote; default <dataDir>/keys/federation.private.jwk.json, generated at first start' },
    services: {
      type: 'array', minItems: 1, description: 'the remote\'s contracts this gateway uses, pinned: checked against what the remote publishes at start',
      items: {
        type: 'object', additionalProperties: false, required: ['service', 'version', 'contractSha256'],
        properties: {
          service: { type: 'string', minLength: 1 },
          version: { type: 'integer', minimum: 1 },
          contractSha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 (hex) of the contract as the remote publishes it (`contractSha256` of GET /services/{id}/v{major})' },
        },
      },
    },
  },
  not: { required: ['jwks', 'jwksUrl'] },
} as const;

const upstream = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    url: { type: 'string', format: 'uri', description: 'base URL; absent = the embedded simulator' },
    gateway: remoteGateway,
    resilience,
  },
  not: { required: ['url', 'gateway'] },
} as const;

const simulator = {
  type: 'object', additionalProperties: false, default: {},
  properties: {
    latencyMs: { type: 'integer', minimum: 0, default: 0 },
    failureRate: { type: 'number', minimum: 0, maximum: 1, default: 0 },
  },
} as const;

/** RFC 3161 time-stamps on the audit checkpoints (audit/anchoring.ts); off while no authority is listed. */
const timestamping = {
  type: 'object', additionalProperties: false, default: {},
  properties: {
    authorities: {
      type: 'array', default: [], description: 'time-stamping authorities, tried in order for each checkpoint',
      items: {
        type: 'object', additionalProperties: false, required: ['url', 'certificateFile'],
        properties: {
          url: { type: 'string', format: 'uri', description: 'where time-stamp queries are POSTed (application/timestamp-query)' },
          certificateFile: { type: 'string', minLength: 1, description: 'PEM file of the authority\'s signing certificate (extendedKeyUsage timeStamping): the only key its tokens are taken from' },
        },
      },
    },
    timeoutMs: { type: 'integer', minimum: 100, default: 10000, description: 'one request to an authority at most this long' },
    toleranceSeconds: { type: 'integer', minimum: 0, default: 60, description: 'how far a token\'s time may lie before the checkpoint\'s (the two clocks\' difference)' },
    retryBaseDelayMs: { type: 'integer', minimum: 10, default: 1000, description: 'first wait after every authority failed; doubled on each failure' },
    retryMaxDelayMs: { type: 'integer', minimum: 10, default: 60000, description: 'longest wait between two attempts' },
    maxLagSeconds: { type: 'integer', minimum: 1, description: 'refuse data requests (AUDIT_ANCHOR_LAG) while a checkpoint has waited longer than this for its time-stamp; absent = never' },
  },
} as const;

/** How long entries stay in the hot store (audit/archiver.ts); off while `hotDays` is absent. */
const retention = {
  type: 'object', additionalProperties: false, default: {},
  properties: {
    hotDays: { type: 'integer', minimum: 1, description: 'entries older than this many days are sealed into archive segments (audit.archive.dir) and only then removed from the hot store; absent = never: nothing is archived' },
  },
} as const;

/** Where sealed segments go and how the archiver paces itself (audit/archiver.ts). */
const archive = {
  type: 'object', additionalProperties: false, default: {},
  properties: {
    dir: { type: 'string', minLength: 1, description: 'where sealed archive segments are written (must be writable once retention is on); default <dataDir>/archive; several PostgreSQL instances on one chain must share it' },
    everySeconds: { type: 'integer', minimum: 1, default: 3600, description: 'how often the background archiver looks for entries past audit.retention.hotDays' },
    maxSegmentEntries: { type: 'integer', minimum: 1, default: 10000, description: 'entries per segment at most (a segment ends at a signed checkpoint, so one is larger only when no checkpoint comes sooner); bounds how long the hot store\'s delete holds its write lock (SQLite: about 0.1 s per 10,000 entries, commits wait that long)' },
  },
} as const;

/**
 * The config's shape, as one constant: the TypeScript types are derived from it (types.ts), so a
 * key is declared once. `upstreams` and `simulators` are keyed by agency here; `configSchema()`
 * replaces them with one property per registered agency, which is what ajv checks.
 */
export const CONFIG_SHAPE = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:gateway:config',
  type: 'object',
  additionalProperties: false,
  required: ['gatewayId'],
  properties: {
    gatewayId: { type: 'string', minLength: 1, description: 'the `aud` clients put in their assertions' },
    mode: {
      enum: ['production', 'demo'], default: 'production',
      description: 'production refuses to start on anything of the demo: an upstream without a url (a simulator), demo keys or passwords, no clients, the memory store',
    },
    publicUrl: { type: 'string', format: 'uri', description: 'the URL clients reach; default http://127.0.0.1:PORT' },
    listen: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
      },
    },
    dataDir: { type: 'string', default: './.data' },
    instanceId: { type: 'string', default: 'gw-1', pattern: '^[A-Za-z0-9._-]{1,64}$' },
    trustProxy: {
      type: 'array', default: [], items: { type: 'string', minLength: 1 },
      description: 'addresses or CIDRs of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (express trust proxy); none by default',
    },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    limits: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        maxBodyBytes: { type: 'integer', minimum: 256, default: 65536 },
        maxAssertionLifetimeSeconds: { type: 'integer', minimum: 1, maximum: 300, default: 300 },
        clockSkewSeconds: { type: 'integer', minimum: 0, maximum: 120, default: 30 },
      },
    },
    signing: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        privateJwkFile: { type: 'string', description: "default <dataDir>/keys/gateway.private.jwk.json, generated at first start; the key set's first key" },
        alg: { enum: ['ES256', 'EdDSA'], default: 'ES256' },
        keySetDir: { type: 'string', description: 'the rotating key set (key-set.ts); default signing/ beside privateJwkFile; every instance reads the same one' },
        rotation: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            activationDelaySeconds: { type: 'integer', minimum: 0, default: 900, description: 'a rotated key is published at once and signs only this long after (longer than pollSeconds and the JWKS cache time, 300 s)' },
            pollSeconds: { type: 'integer', minimum: 1, default: 10, description: 'how often each instance looks for a changed key set' },
            retainRetiredDays: { type: 'integer', minimum: 1, default: 400, description: 'gateway keys prune removes keys retired longer ago than this, except those that signed a stored checkpoint' },
          },
        },
      },
    },
    clientKeys: {
      type: 'object', additionalProperties: false, default: {},
      description: "clients' JWKS URLs: fetched again on an unknown kid, at most once per cooldown",
      properties: {
        fetchTimeoutMs: { type: 'integer', minimum: 100, default: 2000 },
        refetchCooldownSeconds: { type: 'integer', minimum: 1, default: 30, description: 'at most one fetch per client this often, whatever kids the assertions name (failed fetches included)' },
        maxAgeSeconds: { type: 'integer', minimum: 1, default: 600, description: 'fetched keys are used this long at most, then fetched again (a key the agency withdrew stops working)' },
      },
    },
    audit: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        store: { enum: ['sqlite', 'postgres', 'memory'], default: 'sqlite' },
        sqliteFile: { type: 'string', description: 'default <dataDir>/audit.sqlite' },
        postgresUrl: { type: 'string' },
        postgresSchema: { type: 'string', default: 'gateway_audit', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
        postgresConnectTimeoutMs: { type: 'integer', minimum: 100, default: 3000, description: 'wait for a PostgreSQL connection (new or pooled) at most this long' },
        postgresQueryTimeoutMs: { type: 'integer', minimum: 100, default: 5000, description: 'a statement runs at most this long (server-side), and the client waits 1 s more' },
        pseudonymKey: { type: 'string', minLength: 32, description: 'HMAC key for subject pseudonyms; default generated under dataDir' },
        maxBatch: { type: 'integer', minimum: 1, default: 256 },
        checkpointEveryEntries: { type: 'integer', minimum: 1, default: 1000 },
        checkpointEverySeconds: { type: 'integer', minimum: 1, default: 60 },
        timestamping,
        retention,
        archive,
      },
    },
    redis: {
      type: 'object', additionalProperties: false,
      properties: {
        url: { type: 'string' },
        keyPrefix: { type: 'string', default: 'gw:' },
        connectTimeoutMs: { type: 'integer', minimum: 100, default: 3000, description: 'wait for a Redis connection at most this long' },
        commandTimeoutMs: { type: 'integer', minimum: 100, default: 2000, description: 'a Redis command that has not answered by then fails (the request gets SHARED_STATE_UNAVAILABLE)' },
      },
      required: ['url'],
    },
    identityProvider: {
      type: 'object', additionalProperties: false, required: ['issuer'],
      properties: {
        issuer: { type: 'string', minLength: 1 },
        jwks,
        jwksUrl: { type: 'string', format: 'uri' },
        maxConsentLifetimeSeconds: { type: 'integer', minimum: 1, default: 900 },
      },
      oneOf: [{ required: ['jwks'] }, { required: ['jwksUrl'] }],
    },
    clients: {
      type: 'array', default: [],
      items: {
        type: 'object', additionalProperties: false, required: ['id', 'name', 'keys'],
        properties: {
          id: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' },
          name: { type: 'string', minLength: 1 },
          keys: keySource,
          rateLimitPerMinute: { type: 'integer', minimum: 1, default: 6000 },
          encryptResponses: { type: 'boolean', default: false, description: 'answers (200) as a compact JWE, ECDH-ES+A256KW with A256GCM, to the `"use": "enc"` key of this client\'s inline `keys.jwks`; the signature covers the plaintext' },
          federation: {
            type: 'object', additionalProperties: false, required: ['mayActFor'],
            description: 'a gateway that calls on behalf of its own client agencies (RFC 8693 act)',
            properties: {
              mayActFor: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1, maxLength: 128 }, description: 'the agencies (its client ids) it may act for; "*" for any' },
              agencyNames: { type: 'object', additionalProperties: { type: 'string', minLength: 1 }, description: 'their display names (the citizen\'s access log)' },
            },
          },
        },
      },
    },
    purposes: {
      type: 'array', default: [],
      items: {
        type: 'object', additionalProperties: false, required: ['code', 'legalBasis'],
        properties: {
          code: { type: 'string', pattern: '^[A-Z0-9_]{2,64}$' },
          legalBasis: { type: 'string', minLength: 1 },
          caseIdRequired: { type: 'boolean', default: false },
          confidentialDays: { type: 'integer', minimum: 0, default: 0, description: 'days during which citizens do not see accesses for this purpose' },
        },
      },
    },
    grants: {
      type: 'array', default: [],
      items: {
        type: 'object', additionalProperties: false, required: ['client', 'service'],
        properties: {
          client: { type: 'string' },
          service: { type: 'string' },
          purposes: { type: 'array', items: { type: 'string' }, default: [] },
          fieldGroups: { type: 'array', items: { type: 'string' }, default: [] },
        },
      },
    },
    upstreams: {
      type: 'object', default: {}, description: 'per agency: where its system is, how it is called',
      // Typed with the options an agency's plug-in may add (its credentials); configSchema() lists them.
      additionalProperties: { ...upstream, additionalProperties: true },
    },
    simulators: {
      type: 'object', default: {},
      description: 'embedded agency simulators, started for every upstream without a url',
      additionalProperties: simulator,
    },
    forms: {
      type: 'array', default: [],
      items: {
        type: 'object', additionalProperties: false, required: ['id', 'title', 'fields'],
        properties: {
          id: { type: 'string', pattern: '^[a-z0-9-]{1,64}$' },
          title: { type: 'string' },
          procedureCode: { type: 'string' },
          documentsReplaced: { type: 'array', items: { type: 'string' }, default: [] },
          fields: {
            type: 'array', minItems: 1,
            items: {
              type: 'object', additionalProperties: false, required: ['name', 'service', 'fieldGroup', 'path'],
              properties: {
                name: { type: 'string' },
                label: { type: 'string' },
                service: { type: 'string' },
                fieldGroup: { type: 'string' },
                path: { type: 'string', description: 'dotted path into the service record' },
              },
            },
          },
        },
      },
    },
    console: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        accounts: {
          type: 'array', default: [],
          items: {
            type: 'object', additionalProperties: false, required: ['username', 'passwordHash'],
            properties: {
              username: { type: 'string', minLength: 1 },
              passwordHash: { type: 'string', pattern: '^scrypt\\$' },
              displayName: { type: 'string' },
            },
          },
        },
        sessionSeconds: { type: 'integer', minimum: 60, default: 3600 },
        signInLimits: {
          type: 'object', additionalProperties: false, default: {},
          description: 'failed console sign-ins allowed in a sliding window before attempts are refused (RATE_LIMITED with Retry-After)',
          properties: {
            windowSeconds: { type: 'integer', minimum: 1, default: 300 },
            perUsername: { type: 'integer', minimum: 1, default: 5, description: 'per username, from every address together' },
            perAddress: { type: 'integer', minimum: 1, default: 20, description: 'per client address, for every username together' },
            total: { type: 'integer', minimum: 1, default: 100, description: 'for all usernames and addresses together' },
          },
        },
      },
    },
  },
} as const;

/**
 * The schema for the agencies registered now (`adapters/index.ts`): each gets `upstreams.<name>`
 * (url, resilience and its own options) and `simulators.<name>`; no other agency is accepted.
 */
export function configSchema(plugins: readonly Pick<AgencyPlugin, 'name' | 'upstreamOptions'>[] = agencies()) {
  const { upstreams, simulators } = CONFIG_SHAPE.properties;
  return {
    ...CONFIG_SHAPE,
    properties: {
      ...CONFIG_SHAPE.properties,
      upstreams: {
        type: 'object', additionalProperties: false, default: {}, description: upstreams.description,
        properties: Object.fromEntries(plugins.map((p) => [p.name, { ...upstream, properties: { ...upstream.properties, ...p.upstreamOptions } }])),
      },
      simulators: {
        type: 'object', additionalProperties: false, default: {}, description: simulators.description,
        properties: Object.fromEntries(plugins.map((p) => [p.name, simulator])),
      },
    },
  };
}
