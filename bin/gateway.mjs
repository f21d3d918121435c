#!/usr/bin/env node
// The `gateway` command: runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';
register();
await import('../gateway/cli.ts');
