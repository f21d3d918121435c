/**
 * The gateway's public surface: assemble and run one from a validated config, mint the tokens a
 * client agency sends, and the error catalogue clients rely on.
 */
export { createGateway, type Gateway, type GatewayOptions } from './server.ts';
export { resolveConfig, parseConfig, ConfigError, type GatewayConfig } from './config/index.ts';
export { mintAssertion, mintConsent, type AssertionOptions, type ConsentOptions } from './client-assertion.ts';
export { catalogue, GatewayError, type ErrorCode, type Problem } from './errors.ts';
