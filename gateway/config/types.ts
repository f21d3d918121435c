/**
 * The config's TypeScript types, derived from the one schema (`CONFIG_SHAPE` in schema.ts) by
 * json-schema-to-ts: a key, its type, its default and whether it may be absent are written once,
 * there. Keys with a default are always present once the config is parsed.
 */
import type { FromSchema } from 'json-schema-to-ts';
import type { JSONWebKeySet } from 'jose';
import type { CONFIG_SHAPE } from './schema.ts';

type Shape = FromSchema<typeof CONFIG_SHAPE, { keepDefaultedPropertiesOptional: false }>;
/** Key sets as jose reads them (the schema checks only that each key has a `kty`). */
type WithJwks<T> = T extends { jwks?: unknown } ? Omit<T, 'jwks'> & { jwks?: JSONWebKeySet } : T;

/** An agency's name, as its plug-in registers it (adapters/index.ts). */
export type AgencyName = string;

/** `upstreams.<agency>`: a URL, resilience, and the options the agency's plug-in declares (the tax authority's credentials). */
export type UpstreamConfig = Shape['upstreams'][string];
type Resilience = UpstreamConfig['resilience'];
/** An adapter's resilience: from config, or built by hand (adapter tests), the response limit then 8 MiB. */
export type ResilienceConfig = Omit<Resilience, 'maxResponseBytes'> & Partial<Pick<Resilience, 'maxResponseBytes'>>;
export type KeySource = WithJwks<Shape['clients'][number]['keys']>;
export type ClientConfig = Omit<Shape['clients'][number], 'keys'> & { keys: KeySource };
export type PurposeConfig = Shape['purposes'][number];
export type GrantConfig = Shape['grants'][number];
export type FormConfig = Shape['forms'][number];
export type FormField = FormConfig['fields'][number];
export type ConsoleAccount = Shape['console']['accounts'][number];

/** The validated, defaulted, frozen configuration. */
export type GatewayConfig = Omit<Shape, 'clients' | 'identityProvider'> & {
  clients: ClientConfig[];
  identityProvider?: WithJwks<NonNullable<Shape['identityProvider']>>;
};
