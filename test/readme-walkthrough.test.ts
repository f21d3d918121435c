/**
 * The README's walk-through, run as a reader runs it: the gateway started in one terminal the way
 * the text says (`npm start`), every block pasted in order into one bash session in another (so the
 * variables and the `verify` function of earlier steps carry over), then the gateway stopped with
 * Ctrl-C and started again with the restart step's command line, and the restart step's `verify`
 * pasted into the same session. Every block is taken from README.md, so the test fails when the
 * README drifts; only the gateway's port and data directory differ (test/support/readme.ts). What
 * the text says each block prints is asserted, and so are the variations it tells the reader to
 * try (curl with `-i`, the same token again, step 7 repeated, ...), made from the block itself.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './bench/processes.ts';
import { cleanups, launch, runCleanups, userEnv, type Launched } from './support/launch.ts';
import { jsonValues, pointedAt, section, shBlocks } from './support/readme.ts';

const walkThrough = section('## Walk-through');
const blocks = shBlocks(walkThrough);

/**
 * The blocks cut into the walk-through's steps: a `# N.` comment starts one, which runs to the next
 * or to the end of its block (what stands before a block's first step, `GW` and `KEYS`, goes with
 * it). A block without a numbered step is the restart.
 */
function cutIntoSteps() {
  const steps: { n: number; text: string }[] = [];
  const others: string[] = [];
  for (const block of blocks) {
    const lines = block.split('\n');
    const starts = lines.flatMap((l, i) => (/^# \d+\. /.test(l) ? [i] : []));
    if (starts.length === 0) { others.push(block); continue; }
    starts.forEach((start, k) => {
      const from = k === 0 ? 0 : start;
      steps.push({ n: Number(/^# (\d+)\./.exec(lines[start]!)![1]), text: lines.slice(from, starts[k + 1]).join('\n') });
    });
  }
  return { steps, others };
}
const { steps, others } = cutIntoSteps();
const step = (n: number) => {
  const found = steps.filter((s) => s.n === n);
  expect(found, `the walk-through has one step ${n}`).toHaveLength(1);
  return found[0]!.text;
};

/** The text between the end of `block` and the next block (or the end of the walk-through). */
function proseAfter(block: string): string {
  const at = walkThrough.indexOf(block) + block.length;
  const next = walkThrough.indexOf('```sh', at + 3);
  return walkThrough.slice(at, next === -1 ? undefined : next);
}
const stepBlock = (n: number) => blocks.find((b) => b.includes(step(n)))!;

/** The first match of `pattern` in `text`, its groups; fails naming what the README should say. */
function said(text: string, pattern: RegExp, what: string): string[] {
  const m = pattern.exec(text);
  expect(m, `the README says ${what}`).not.toBeNull();
  return m!.slice(1);
}

/** A variation of `script` the reader is told to try; it must differ from the script, or the README changed under the test. */
function varied(script: string, pattern: string | RegExp, replacement: string | ((...m: string[]) => string)): string {
  const out = script.replace(pattern, replacement as string);
  expect(out, `${pattern} in:\n${script}`).not.toBe(script);
  return out;
}

/** The request body a step sends: its `BODY='…'` line. */
const bodyOf = (script: string) => JSON.parse(said(script, /^BODY='(.*)'$/m, `a BODY in:\n${script}`)[0]!) as Record<string, any>;

/** The step's curl command, with its continuation lines. */
function curlOf(script: string): string {
  const [command] = said(script, /^(curl (?:.*\\\n)*.*)$/m, `a curl command in:\n${script}`);
  return command!;
}

/** What `curl -i` printed: the status, the headers (lower-cased names) and the JSON body. */
function httpResponse(text: string) {
  const split = text.indexOf('\r\n\r\n');
  expect(split, text).toBeGreaterThan(-1);
  const [statusLine, ...headerLines] = text.slice(0, split).split('\r\n');
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: jsonValues(text.slice(split + 4)) };
}

/**
 * The reader's second terminal: one bash session from the repository, into which text is pasted.
 * `paste` resolves once the shell has run all of it, with what it printed.
 */
class Terminal {
  private readonly shell: ChildProcessWithoutNullStreams;
  private stdout = '';
  private stderr = '';
  private waiting: (() => void) | null = null;
  readonly pasted: string[] = [];

  constructor(private readonly url: string, private readonly dataDir: string) {
    this.shell = spawn('bash', [], { cwd: ROOT, env: { ...userEnv(), GATEWAY_DATA_DIR: dataDir } });
    this.shell.stdout.on('data', (d: Buffer) => { this.stdout += d.toString(); this.waiting?.(); });
    this.shell.stderr.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.shell.on('exit', () => this.waiting?.());
    cleanups.push(() => this.shell.kill());
  }

  /** Pastes `script` (pointed at the test's gateway) and gives back what it printed, checking it ran clean. */
  async paste(script: string): Promise<string> {
    this.pasted.push(script);
    const marker = `--- done ${randomUUID()}`;
    const from = this.stdout.length;
    const errFrom = this.stderr.length;
    this.shell.stdin.write(`${pointedAt(script, this.url, this.dataDir)}\nprintf '\\n${marker} %s\\n' "$?"\n`);
    const done = new RegExp(`\\n${marker} (\\d+)\\n`);
    await new Promise<void>((resolve, reject) => {
      this.waiting = () => {
        if (done.test(this.stdout.slice(from))) resolve();
        else if (this.shell.exitCode !== null) reject(new Error(`the shell exited:\n${this.stderr}`));
      };
      this.waiting();
    });
    this.waiting = null;
    const printed = this.stdout.slice(from);
    const [, status] = done.exec(printed)!;
    const stderr = this.stderr.slice(errFrom);
    expect({ status: Number(status), stderr }, `${script}\nprinted:\n${printed}`).toEqual({ status: 0, stderr: '' });
    return printed.slice(0, printed.search(done));
  }

  /** Pastes `script` and gives back the JSON answers it printed, as many as `count`. */
  async answers(script: string, count: number): Promise<any[]> {
    const printed = await this.paste(script);
    const values = jsonValues(printed);
    expect(values, printed).toHaveLength(count);
    return values;
  }
}

const contract = (service: string) => JSON.parse(readFileSync(join(ROOT, 'contracts', service, 'v1', 'contract.json'), 'utf8')) as { fieldGroups: Record<string, string[]> };

let gateway: Launched;
let terminal: Terminal;
/** The command lines the gateway's terminal ran. */
const started: string[] = [];
const startGateway = async (command: string, where?: Launched) => {
  started.push(command);
  gateway = await launch('bash', ['-c', command], where && { port: where.port, dataDir: where.dataDir });
};

beforeAll(async () => {
  const [start] = said(walkThrough, /Start the gateway in one terminal \(`([^`]+)`\)/, 'how to start the gateway');
  await startGateway(start!);
  terminal = new Terminal(gateway.url, gateway.dataDir);
}, 90_000);
afterAll(runCleanups);

/** A source object as the text describes it: the agency, the retrieval time, the upstream's reference. */
const traced = { agency: expect.any(String), retrievedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), reference: expect.any(String) };

describe('the README walk-through, pasted as written', () => {
  it('has steps 1 to 7, in order, each with a command, and then the restart', () => {
    expect(steps.map((s) => s.n)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const s of steps) expect(s.text, `step ${s.n}`).toMatch(/^(curl|verify) /m);
    expect(others, 'one block besides the numbered steps: the restart').toHaveLength(1);
    expect(blocks.at(-1)).toBe(others[0]);
    expect(others[0]).toMatch(/\bnpm start\b/);
  });

  it('1: the portal\'s lookup carries core and address and says the other groups are withheld; -i shows the headers; the same token again is AUTH_REPLAYED', async () => {
    const script = step(1);
    const [answer] = await terminal.answers(script, 1);
    expect(answer.fieldGroups).toEqual({ core: 'released', address: 'released', family: 'withheld', vital: 'withheld' });
    const { fieldGroups } = contract('population.identity');
    for (const field of [...fieldGroups.core!, ...fieldGroups.address!]) expect(answer, field).toHaveProperty(field);
    for (const field of [...fieldGroups.family!, ...fieldGroups.vital!]) expect(answer, field).not.toHaveProperty(field);
    expect(answer.personalId).toBe(bodyOf(script).personalId);

    const prose = proseAfter(stepBlock(1));
    said(prose, /Add `-i` to curl to see the headers: `X-Request-Id`[^`]*`X-Gateway-Signature`/, 'what -i shows');
    const withHeaders = httpResponse(await terminal.paste(varied(script, /^curl /m, 'curl -i ')));
    expect(withHeaders.status).toBe(200);
    expect(withHeaders.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(withHeaders.headers['x-gateway-signature']).toMatch(/^[\w-]+\.\.[\w-]+$/); // detached JWS
    expect(withHeaders.body[0].fieldGroups).toEqual(answer.fieldGroups);

    said(prose, /the same token again gives `401 AUTH_REPLAYED`/, 'what a replay gives');
    const [replayed] = await terminal.answers(curlOf(script), 1); // TOKEN is still the one just used
    expect(replayed).toMatchObject({ status: 401, code: 'AUTH_REPLAYED' });
  }, 60_000);

  it('2: the land office\'s parcel lookup, and the case id it needs', async () => {
    const script = step(2);
    const [answer] = await terminal.answers(script, 1);
    expect(answer.fieldGroups).toEqual({ parcel: 'released', certificate: 'released', owners: 'released' });
    expect(answer.parcels.map((p: any) => p.certificate.serial)).toEqual([bodyOf(script).certificateSerial]);
    expect(answer.source).toEqual(traced);

    said(script, /case id required by this purpose/, 'that the purpose needs a case id');
    const [refused] = await terminal.answers(varied(script, / --case-id \S+/, ''), 1);
    expect(refused).toMatchObject({ status: 400, code: 'CASE_ID_REQUIRED' });
  }, 60_000);

  it('3: a taxpayer\'s obligations, the personal id serving as tax code', async () => {
    const script = step(3);
    const [answer] = await terminal.answers(script, 1);
    const { taxCode } = bodyOf(script);
    expect(taxCode).toMatch(/^\d{12}$/);
    expect(answer.fieldGroups).toEqual({ obligations: 'released' });
    expect(answer.obligations.length).toBeGreaterThan(0);
    for (const o of answer.obligations) expect(o.taxCode).toBe(taxCode);
    expect(answer.source).toEqual({ ...traced, agency: 'tax' });
  }, 60_000);

  it('4: the mortgages on a parcel, from the SOAP registry, as JSON', async () => {
    const script = step(4);
    const [answer] = await terminal.answers(script, 1);
    expect(answer.fieldGroups).toEqual({ registrations: 'released' });
    expect(answer.registrations.length).toBeGreaterThan(0);
    for (const r of answer.registrations) expect(r.property.certificateSerial).toBe(bodyOf(script).certificateSerial);
    expect(answer.source).toEqual({ ...traced, agency: 'justice' });
  }, 60_000);

  it('5: the prefill: every field with its status and source, groups outside the consent never fetched; the three demo forms', async () => {
    const script = step(5);
    const [answer] = await terminal.answers(script, 1);
    const { form } = bodyOf(script);
    expect(answer.form.id).toBe(form);
    const consented = new Set(said(script, /--scope "([^"]+)"/, 'the consent\'s scope')[0]!.split(' '));
    const statuses = new Set<string>();
    for (const field of answer.fields) {
      statuses.add(field.status);
      expect(field.source, field.name).toMatchObject({ agency: expect.any(String), service: expect.any(String) });
      if (field.status === 'available') {
        expect(field, field.name).toHaveProperty('value');
        expect(field.source, field.name).toMatchObject(traced);
      } else {
        expect(field, field.name).not.toHaveProperty('value');
        expect(field.reason, field.name).toEqual(expect.any(String));
      }
      if (field.status === 'withheld') expect(['not_consented', 'not_granted']).toContain(field.reason);
      if (!consented.has(field.fieldGroup)) {
        expect(field, field.name).toMatchObject({ status: 'withheld', reason: 'not_consented' });
        expect(field.source, field.name).not.toHaveProperty('retrievedAt'); // never fetched
      }
    }
    // The demo answer shows both sides of the text: fields available, and a group outside the consent.
    expect([...statuses].sort()).toEqual(['available', 'withheld']);

    const prose = proseAfter(stepBlock(5));
    const [list] = said(prose, /The three demo forms are\s([^.]*)\./, 'the demo forms');
    const forms = [...list!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    expect(forms).toHaveLength(3);
    expect(forms).toContain(form);
    for (const other of forms.filter((f) => f !== form)) {
      const [prefilled] = await terminal.answers(varied(script, `"form":"${form}"`, `"form":"${other}"`), 1);
      expect(prefilled.form.id, other).toBe(other);
      expect(prefilled.fields.length, other).toBeGreaterThan(0);
    }
  }, 60_000);

  it('6: title verification: CS 100002 encumbered with its registration as evidence, CS 100001 clear; each part with its source', async () => {
    const script = step(6);
    const [encumbered, clear] = await terminal.answers(script, 2);
    const prose = proseAfter(stepBlock(6));
    const [list] = said(prose, /`reasons` lists every one \(([^)]*)\)/, 'the reasons');
    const reasons = [...list!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    for (const answer of [encumbered, clear]) {
      expect(answer.reasons).toContain(answer.verdict); // the most severe reason that holds
      for (const r of answer.reasons) expect(reasons).toContain(r);
      expect(answer.parcel.source).toEqual({ ...traced, agency: 'land' });
      for (const owner of answer.owners) expect(owner.identity.source).toEqual({ ...traced, agency: 'population' });
      expect(answer.registrations.source).toEqual({ ...traced, agency: 'justice' });
      expect(answer.obligations.source).toEqual({ ...traced, agency: 'tax' });
    }
    said(script, /verify "CS 100002" +# mortgaged: verdict "encumbered", with the registration as evidence/, 'what CS 100002 gives');
    expect(encumbered).toMatchObject({ verdict: 'encumbered', reasons: ['encumbered'], parcel: { certificate: { serial: 'CS 100002' } } });
    expect(encumbered.registrations.items.filter((r: any) => r.status === 'registered')).toHaveLength(1);

    said(script, /verify "CS 100001" +# clear: owners alive and matching, mortgage released, obligations paid/, 'what CS 100001 gives');
    expect(clear).toMatchObject({ verdict: 'clear', reasons: ['clear'], parcel: { certificate: { serial: 'CS 100001' } } });
    expect(clear.owners.length).toBeGreaterThan(0);
    for (const owner of clear.owners) {
      expect(owner.identity).toMatchObject({ found: true, lifeStatus: 'alive', nameMatch: 'exact' });
      expect(owner.issues).toEqual([]);
    }
    expect(clear.registrations.items.length).toBeGreaterThan(0);
    for (const r of clear.registrations.items) expect(r.status).toBe('released');
    expect(clear.obligations.items.length).toBeGreaterThan(0);
    for (const o of clear.obligations.items) expect(o.paid).toBe(true);
  }, 60_000);

  let declared: any;

  it('7: the declaration; repeated with a fresh token, the first answer; another body under the key, IDEMPOTENCY_KEY_REUSED; CS 100001 now obligations_outstanding', async () => {
    const script = step(7);
    [declared] = await terminal.answers(script, 1);
    expect(declared).toMatchObject({ noticeNumber: expect.any(String), fieldGroups: { declaration: 'released' }, source: { ...traced, agency: 'tax' } });
    expect(declared.obligations.length).toBeGreaterThan(0);

    const prose = proseAfter(stepBlock(7));
    said(prose, /Repeat step 7 with a fresh token and the same `Idempotency-Key`: the first answer comes back/, 'what a repeat gives');
    expect(script).toMatch(/^TOKEN=\$\(npm run -s gateway -- token /m); // the block mints its own token
    const [repeated] = await terminal.answers(script, 1);
    expect(repeated).toEqual(declared);

    said(prose, /the same key with a different body is refused \(`IDEMPOTENCY_KEY_REUSED`\)/, 'what another body gives');
    const otherBody = varied(script, /"declaredPrice":(\d+)/, (_, price) => `"declaredPrice":${Number(price) + 1000000}`);
    const [refused] = await terminal.answers(otherBody, 1);
    expect(refused).toMatchObject({ status: 422, code: 'IDEMPOTENCY_KEY_REUSED' });

    const [verify, verdict] = said(prose, /so `(verify "[^"]+")` answers\s+`(\w+)`/, 'what verify answers after the declaration');
    const [after] = await terminal.answers(verify!, 1);
    expect(after.verdict).toBe(verdict);
    expect(after.reasons).toEqual([verdict]);
    // No second declaration filed: the unpaid notices are the one declaration's.
    const unpaid = after.obligations.items.filter((o: any) => !o.paid);
    expect(unpaid.map((o: any) => o.kind).sort()).toEqual(declared.obligations.map((o: any) => o.kind).sort());
    expect(after.obligations.summary.outstandingCount).toBe(declared.obligations.length);
  }, 60_000);

  it('restart: Ctrl-C, started again with the justice registry on a closed port; verify, still defined, says incomplete naming justice; the declaration is gone', async () => {
    const restart = others[0]!;
    const prose = walkThrough.slice(walkThrough.indexOf(step(7)), walkThrough.indexOf(restart));
    said(prose, /Stop the gateway \(Ctrl-C\)/, 'how to stop the gateway');
    const lines = restart.split('\n').filter((l) => l.trim());
    const starts = lines.filter((l) => /\bnpm start\b/.test(l));
    expect(starts, 'the restart block starts the gateway once').toHaveLength(1);
    const otherTerminal = lines.filter((l) => !starts.includes(l));
    expect(otherTerminal.length, 'and runs something in the other terminal').toBeGreaterThan(0);

    // Ctrl-C in the gateway's terminal: SIGINT to its process group.
    process.kill(-gateway.child.pid!, 'SIGINT');
    expect(await gateway.exit).toEqual({ code: 0, signal: null });
    await gateway.released;
    const [agency] = said(starts[0]!, /UPSTREAM_(\w+)_URL=/, 'which upstream is pointed away');
    await startGateway(starts[0]!, gateway);

    const [answer] = await terminal.answers(otherTerminal.join('\n'), 1);
    const [printed] = said(otherTerminal.join('\n'), /# in the other terminal: (.*)$/m, 'what verify prints after the restart');
    expect(answer).toMatchObject(JSON.parse(`{${printed}}`));
    expect(answer.failedSources).toEqual([{ agency: agency!.toLowerCase(), code: expect.any(String) }]);
    expect(answer.reasons).toContain('incomplete');

    // Never clear, and the simulators are back to their seed data: the parcel step 7 declared on
    // is missing only the unreachable registry, and its unpaid notices are gone.
    said(prose, /never `clear`/, 'that a missing registry is never clear');
    said(prose, /the declaration of step 7 is\s+gone/, 'that a restart resets the simulators');
    const [verify] = said(proseAfter(stepBlock(7)), /so `(verify "[^"]+")` answers/, 'the verify of step 7');
    const [reset] = await terminal.answers(verify!, 1);
    expect(reset).toMatchObject({ verdict: 'incomplete', reasons: ['incomplete'], failedSources: [{ agency: 'justice' }] });
    expect(reset.obligations.items.map((o: any) => o.noticeNumber)).not.toContain(declared.noticeNumber);
    expect(reset.obligations.summary.outstandingCount).toBe(0);
  }, 90_000);

  it('ran every line of every block as written, in one terminal or the other', () => {
    const ran = [...terminal.pasted, ...started];
    for (const block of blocks) {
      const lines = new Set(ran.filter((t) => block.includes(t)).flatMap((t) => t.split('\n')));
      expect(block.split('\n').filter((l) => l.trim() && !lines.has(l)), block).toEqual([]);
    }
  });
});
