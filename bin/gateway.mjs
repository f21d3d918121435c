#!/usr/bin/env node
// The `gateway` command (`npx gateway …`, `npm run gateway -- …`). It runs the compiled build,
// dist/gateway/cli.js (`npm run build`; `npm install` makes it through the `prepare` script), when
// dist/ was built from the sources exactly as they are now: the fingerprint of the build's inputs
// (path, size and mtime of each file under gateway/, adapters/, contracts/ and the build's config
// files, scripts/build.mjs sourceFingerprint) equals the one dist/build-stamp.json was written
// with. Otherwise, or with GATEWAY_CLI_SOURCES=1, it runs the TypeScript sources through tsx's
// loader, in this same process: no wrapper process stands between a signal and the gateway.
import { buildIsCurrent } from '../scripts/build.mjs';

if (process.env.GATEWAY_CLI_SOURCES !== '1' && buildIsCurrent()) {
  await import('../dist/gateway/cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../gateway/cli.ts');
}
