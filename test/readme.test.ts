/**
 * The README's error catalogue and configuration table against the code, both ways: a code or a
 * config key added without its row fails, and so does a row naming one that no longer exists.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { catalogue } from '../gateway/errors.ts';
import { CONFIG_SHAPE } from '../gateway/config/schema.ts';
import { agencies } from '../adapters/index.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The rows of the markdown table that follows `heading`, as arrays of cells. */
function tableAfter(heading: string): string[][] {
  const from = readme.indexOf(`\n${heading}\n`);
  expect(from, `README has a "${heading}" section`).toBeGreaterThan(-1);
  const lines = readme.slice(from).split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith('|')) break;
    const cells = line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim());
    if (cells.every((c) => /^-+$/.test(c))) continue;
    rows.push(cells);
  }
  return rows.slice(1); // the header row
}

const ticked = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

type Schema = { type?: string; properties?: Record<string, Schema>; additionalProperties?: boolean | Schema; items?: Schema };

/**
 * Every key an operator can write, as a path: `audit.store`, `clients[].keys.jwks`,
 * `upstreams.<agency>.resilience.timeoutMs`. Objects whose members are free (a JWKS) are one key.
 */
function configKeys(schema: Schema, prefix = ''): string[] {
  const object = schema.properties ?? (typeof schema.additionalProperties === 'object' ? { '<agency>': schema.additionalProperties } : null);
  if (schema.type === 'array' && schema.items?.properties) return configKeys(schema.items, `${prefix}[]`);
  if (!object || prefix === 'clients[].keys.jwks' || prefix === 'identityProvider.jwks') return [prefix];
  return Object.entries(object).flatMap(([k, s]) => configKeys(s, prefix ? `${prefix}.${k}` : k));
}

/** The key cell's keys in full: `` `a.b`, `.c` `` is `a.b` and `a.c`. */
function rowKeys(cell: string): string[] {
  let last = '';
  return ticked(cell).map((k) => {
    if (k.startsWith('.')) return `${last.slice(0, last.lastIndexOf('.'))}${k}`;
    last = k;
    return k;
  });
}

describe('the README', () => {
  it('lists every error code with its status, and no code the catalogue lacks', () => {
    const rows = tableAfter('## Error catalogue');
    const documented = new Map(rows.map(([code, status]) => [ticked(code!)[0], Number(status)]));
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(Object.entries(catalogue).map(([code, e]) => [code, e.status])));
    expect(rows.length).toBe(documented.size); // no code twice
  });

  it('documents every config key, and names no key the schema lacks', () => {
    const rows = tableAfter('## Configuration').map(([key, text]) => ({ keys: rowKeys(key!), text: text! }));
    const keys = configKeys(CONFIG_SHAPE as unknown as Schema);
    const undocumented = keys.filter((path) => {
      // The row naming the longest prefix of the path; the rest of it must be named in that row's text.
      let best: { row: (typeof rows)[number]; prefix: string } | null = null;
      for (const row of rows) {
        for (const k of row.keys) {
          if ((path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[]`)) && k.length > (best?.prefix.length ?? -1)) best = { row, prefix: k };
        }
      }
      if (!best) return true;
      const rest = path.slice(best.prefix.length).split(/\.|\[\]/).filter(Boolean);
      const named = new Set(ticked(best.row.text).map((n) => n.replace(/\[\]$/, '')));
      return rest.some((segment) => !named.has(segment));
    });
    expect(undocumented).toEqual([]);

    const known = new Set(keys.flatMap((k) => k.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))));
    const stale = rows.flatMap((r) => r.keys).filter((k) => !known.has(k));
    expect(stale).toEqual([]);
  });

  it('names the options each agency plug-in adds to its upstream', () => {
    const row = tableAfter('## Configuration').find(([key]) => rowKeys(key!).includes('upstreams.<agency>'));
    expect(row).toBeDefined();
    const named = new Set(ticked(row![1]!));
    for (const p of agencies()) for (const option of Object.keys(p.upstreamOptions ?? {})) expect(named, `${p.name}: ${option}`).toContain(option);
  });
});
