/**
 * The README's shell blocks, taken from the README itself so that a test running them fails when
 * the README drifts, and pointed at a test's gateway: only where it listens and its data directory
 * differ (`http://127.0.0.1:8080` and `.data/` are replaced by the test's).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT } from '../bench/processes.ts';

export const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

const SH_BLOCK = /```sh\n([\s\S]*?)```/g;

/** The ```sh blocks of `text`, in order. */
export function shBlocks(text: string): string[] {
  return [...text.matchAll(SH_BLOCK)].map((m) => m[1]!);
}

/** The first ```sh block after `marker` in the README. */
export function recipeAfter(marker: string): string {
  const at = README.indexOf(marker);
  expect(at, `README has "${marker}"`).toBeGreaterThan(-1);
  const [block] = shBlocks(README.slice(at));
  expect(block, `a sh block after "${marker}"`).toBeDefined();
  return block!;
}

/**
 * The README section under `heading` (e.g. `## Walk-through`), up to the next heading of its level
 * or above (a shell comment in a fenced block is no heading).
 */
export function section(heading: string): string {
  const level = /^#+/.exec(heading)![0].length;
  const lines = README.split('\n');
  const start = lines.indexOf(heading);
  expect(start, `README has "${heading}"`).toBeGreaterThan(-1);
  let fenced = false;
  const end = lines.findIndex((l, i) => {
    if (l.startsWith('```')) fenced = !fenced;
    return i > start && !fenced && new RegExp(`^#{1,${level}} `).test(l);
  });
  return lines.slice(start, end === -1 ? undefined : end).join('\n');
}

/** `script` pointed at the test's gateway and data directory instead of the README's defaults. */
export function pointedAt(script: string, url: string, dataDir: string): string {
  return script.replaceAll('http://127.0.0.1:8080', url).replaceAll('.data/', `${dataDir}/`);
}

/**
 * The JSON documents of what curl printed: `curl -s` adds no newline, so two answers in a row
 * stand side by side. Anything else between them (but whitespace) fails.
 */
export function jsonValues(text: string): any[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '{' || c === '[') {
      if (depth++ === 0) start = i;
    } else if (depth === 0) {
      if (!/\s/.test(c)) throw new Error(`not a JSON document at ${i}: ${text.slice(i, i + 200)}`);
    } else if (c === '"') {
      inString = true;
    } else if ((c === '}' || c === ']') && --depth === 0) {
      values.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  if (depth !== 0) throw new Error(`a JSON document is cut off: ${text.slice(start, start + 200)}`);
  return values;
}
