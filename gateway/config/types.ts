import type { JSONWebKeySet } from 'jose';

/** An agency's name, as its plug-in registers it (adapters/index.ts). */
export type AgencyName = string;

export interface ResilienceConfig {
  timeoutMs: number;
  retries: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  breakerThreshold: number;
  breakerHalfOpenAfterMs: number;
  maxConcurrent: number;
  maxQueued: number;
  /** Default 8 MiB. */
  maxResponseBytes?: number;
}
/** `upstreams.<agency>`: a URL, resilience, and the options the agency's plug-in declares (the tax authority's credentials). */
export interface UpstreamConfig { url?: string; resilience: ResilienceConfig; [option: string]: unknown }
export interface KeySource { jwks?: JSONWebKeySet; jwksUrl?: string }
export interface ClientConfig { id: string; name: string; keys: KeySource; rateLimitPerMinute: number }
export interface PurposeConfig { code: string; legalBasis: string; caseIdRequired: boolean; confidentialDays: number }
export interface GrantConfig { client: string; service: string; purposes: string[]; fieldGroups: string[] }
export interface FormField { name: string; label?: string; service: string; fieldGroup: string; path: string }
export interface FormConfig { id: string; title: string; procedureCode?: string; documentsReplaced: string[]; fields: FormField[] }
export interface ConsoleAccount { username: string; passwordHash: string; displayName?: string }

/** The validated, defaulted, frozen configuration. */
export interface GatewayConfig {
  gatewayId: string;
  publicUrl?: string;
  listen: { host: string; port: number };
  dataDir: string;
  instanceId: string;
  /** Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed. */
  trustProxy: string[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  limits: { maxBodyBytes: number; maxAssertionLifetimeSeconds: number; clockSkewSeconds: number };
  signing: { privateJwkFile?: string; alg: 'ES256' | 'EdDSA' };
  audit: {
    store: 'sqlite' | 'postgres' | 'memory';
    sqliteFile?: string;
    postgresUrl?: string;
    postgresSchema: string;
    postgresConnectTimeoutMs: number;
    postgresQueryTimeoutMs: number;
    pseudonymKey?: string;
    maxBatch: number;
    checkpointEveryEntries: number;
    checkpointEverySeconds: number;
  };
  redis?: { url: string; keyPrefix: string; connectTimeoutMs: number; commandTimeoutMs: number };
  identityProvider?: KeySource & { issuer: string; maxConsentLifetimeSeconds: number };
  clients: ClientConfig[];
  purposes: PurposeConfig[];
  grants: GrantConfig[];
  upstreams: Record<AgencyName, UpstreamConfig>;
  simulators: Record<AgencyName, { latencyMs: number; failureRate: number }>;
  forms: FormConfig[];
  console: { accounts: ConsoleAccount[]; sessionSeconds: number; signInLimits: { windowSeconds: number; perUsername: number; perAddress: number; total: number } };
}
