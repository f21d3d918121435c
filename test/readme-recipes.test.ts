/**
 * The README's copy-paste recipes, run as written (taken from the README, so the test fails when
 * the README drifts) against a demo gateway. Only where it listens and its data directory differ
 * (test/support/readme.ts). The walk-through as a whole: readme-walkthrough.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoConfig, parseConfig } from '../gateway/config/index.ts';
import { createGateway, type Gateway } from '../gateway/server.ts';
import { grantableFieldGroups, grantableServices } from '../gateway/services/index.ts';
import { ROOT } from './bench/processes.ts';
import { pointedAt, recipeAfter } from './support/readme.ts';

const run = promisify(execFile);

let gateway: Gateway;
let url: string;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gw-readme-'));
  const cfg = parseConfig({ ...(await demoConfig(dataDir)), logLevel: 'silent' }, { env: {}, knownServices: grantableServices(), fieldGroups: grantableFieldGroups() });
  gateway = await createGateway(cfg);
  url = await gateway.listen(0, '127.0.0.1');
});
afterAll(async () => { await gateway?.close(); });

/** Runs a recipe in bash from the repository, pointed at this test's gateway and data directory. */
async function runRecipe(script: string): Promise<string> {
  const { stdout } = await run('bash', ['-c', pointedAt(script, url, dataDir)], { cwd: ROOT, env: { ...process.env, GATEWAY_DATA_DIR: dataDir }, timeout: 60_000 })
    .catch((e: { stdout: string }) => ({ stdout: e.stdout }));
  return stdout;
}

describe('the README recipes', () => {
  it('verifies an export offline, and catches its cut tail from the file alone', async () => {
    // Something to export: three lookups of the walk-through first.
    for (let i = 0; i < 3; i++) await runRecipe(recipeAfter('## Walk-through'));
    const out = await runRecipe(recipeAfter('An unfiltered NDJSON export verifies offline'));
    const intact = /chain intact: (\d+) entries, head seq (\d+), last checkpoint seq (\d+)/.exec(out);
    expect(intact, out).not.toBeNull();
    const head = Number(intact![2]);
    expect(Number(intact![3])).toBe(head); // the export's own signed head
    expect(out).toContain(`CHAIN TRUNCATED after seq ${head - 2}`);
  }, 90_000);

  it('shows a citizen who looked at their data: the walk-through\'s first lookup', async () => {
    const lookup = JSON.parse(await runRecipe(recipeAfter('## Walk-through')));
    expect(lookup).toMatchObject({ personalId: '001085123456', fieldGroups: { core: 'released', address: 'released', family: 'withheld', vital: 'withheld' } });
    const log = JSON.parse(await runRecipe(recipeAfter("With the demo (the citizen's"))) as { entries: Record<string, any>[]; nextCursor: string | null };
    expect(log.entries[0]).toMatchObject({
      agency: { id: 'portal' }, service: 'population.identity', purpose: { code: 'PUBLIC_SERVICE_PREFILL', legalBasis: expect.any(String) },
      fields: ['population.identity:core', 'population.identity:address'], outcome: 'released',
    });
  }, 60_000);
});
