import type { UpstreamConfig } from '../config/types.ts';

/** `upstreams.<agency>.gateway`: another gateway standing in for the agency's own system. */
export type RemoteGatewayConfig = NonNullable<UpstreamConfig['gateway']>;
