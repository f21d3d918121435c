import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { ValidateFunction } from 'ajv';
import { contractAjv, type Contract } from '../gateway/contracts.ts';
import { catalogue } from '../gateway/errors.ts';
import { buildOpenApi } from '../gateway/openapi.ts';
import { startGateway, type TestGateway } from './support/fixtures.ts';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

type Json = Record<string, any>;

let gw: TestGateway;
let doc: Json;
beforeAll(async () => {
  gw = await startGateway();
  const res = await fetch(`${gw.url}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = await res.json();
});
afterAll(async () => { await gw.close(); });

const contracts = () => [...gw.gateway.contracts.values()];
const servicePath = (c: Contract) => `/services/${c.meta.service}/v${c.meta.version}`;
const schemasOf = (c: Contract) => [['request', c.requestSchema], ['response', c.responseSchema]] as const;

/** Validators of the served document's components (their `#/components/...` pointers resolved by ajv). */
function openApiComponents() {
  const ajv = contractAjv();
  ajv.addSchema({ $id: 'urn:test:openapi', components: { schemas: doc.components.schemas } });
  return (name: string) => ajv.compile({ $ref: `urn:test:openapi#/components/schemas/${name}` });
}

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document whose $refs all resolve', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(JSON.stringify(doc)).not.toMatch(/"\$ref":"urn:/);
  });

  it("passes Redocly's linter (recommended rules) with no error; its only warnings are the ones the README lists", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-openapi-')), 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));
    const bin = join(process.cwd(), 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
    // The linter exits 1 when it finds an error: its report is read either way.
    const run = await promisify(execFile)(process.execPath, [bin, 'lint', file, '--format=json'], { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }, maxBuffer: 16 * 1024 * 1024 })
      .catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    const report = JSON.parse(run.stdout) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; severity: string; location: { pointer: string }[] }[] };
    expect(report.totals.errors).toBe(0);
    expect(doc.servers).toEqual([expect.objectContaining({ url: gw.url })]);
    expect(doc.info.license).toEqual({ name: 'Apache-2.0', identifier: 'Apache-2.0' });
    // The one rule left reads a `required` inside if/then/else/not as if it stood alone; each property it names is defined beside it.
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    for (const problem of report.problems) {
      expect(problem.ruleId).toBe('no-required-schema-properties-undefined');
      expect(readme).toContain(problem.ruleId);
      const pointer = /^#\/components\/schemas\/([^/]+)\/((?:then|else|not)(?:\/(?:then|else|not|anyOf\/\d+))*)\/required\/(\d+)$/.exec(problem.location[0]!.pointer);
      expect(pointer, problem.location[0]!.pointer).not.toBeNull();
      const schema = doc.components.schemas[pointer![1]!];
      const sub = pointer![2]!.split('/').reduce((s: Json, k: string) => s[k], schema);
      expect(Object.keys(schema.properties)).toContain(sub.required[Number(pointer![3])]);
    }
    expect(report.totals.warnings).toBe(report.problems.length);
  });

  it('has one POST path per contract, with its schemas, headers and problem responses', () => {
    expect(contracts().length).toBeGreaterThan(0);
    for (const c of contracts()) {
      const op = doc.paths[servicePath(c)]?.post;
      expect(op, servicePath(c)).toBeDefined();
      const base = `#/components/schemas/${c.meta.service}.v${c.meta.version}`;
      expect(op.requestBody.content['application/json'].schema).toEqual({ $ref: `${base}.request` });
      expect(op.responses['200'].content['application/json'].schema).toEqual({ $ref: `${base}.response` });
      expect(Object.keys(op.responses['200'].headers)).toEqual(expect.arrayContaining(['X-Request-Id', 'X-Gateway-Signature']));
      const params = op.parameters.map((p: Json) => p.$ref);
      expect(params.includes('#/components/parameters/X-Citizen-Consent')).toBe(Boolean(c.meta.consent));
      expect(params.includes('#/components/parameters/Idempotency-Key')).toBe(Boolean(c.meta.write));
      for (const status of ['400', '401', '403', '404', '413', '415', '429', '502', '503', '504']) {
        expect(op.responses[status], `${servicePath(c)} ${status}`).toEqual({ $ref: `#/components/responses/Problem${status}` });
      }
    }
  });

  it('describes problems as application/problem+json with every catalogue code', () => {
    expect(doc.components.schemas.Problem.properties.code.enum).toEqual(Object.keys(catalogue));
    const forbidden = doc.components.responses.Problem403;
    expect(forbidden.content['application/problem+json'].schema.allOf[1].properties.code.enum)
      .toEqual(Object.keys(catalogue).filter((c) => catalogue[c as keyof typeof catalogue].status === 403));
    expect(doc.components.responses.Problem429.headers).toHaveProperty('Retry-After');
  });

  it('declares the client assertion as a bearer JWT and its claims', () => {
    const scheme = doc.components.securitySchemes.clientAssertion;
    expect(scheme).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    for (const claim of ['iss', 'aud', 'iat', 'exp', 'jti', 'purpose', 'case_id', 'user_id', 'body_sha256']) expect(scheme.description).toContain(`\`${claim}\``);
    expect(doc.security).toEqual([{ clientAssertion: [] }]);
    expect(doc.paths['/healthz'].get.security).toEqual([]);
  });

  it('has the discovery, audit, citizen and operations endpoints', () => {
    for (const path of ['/services', '/services/{serviceId}/v{major}', '/.well-known/jwks.json', '/.well-known/gateway-configuration',
      '/audit/entries', '/audit/verify', '/audit/export', '/citizen/access-log', '/healthz', '/readyz', '/metrics', '/openapi.json']) {
      expect(doc.paths[path]?.get, path).toBeDefined();
    }
    expect(doc.paths['/citizen/access-log'].get.parameters).toContainEqual({ $ref: '#/components/parameters/X-Citizen-Consent' });
  });
});

describe('contract examples', () => {
  it('every example validates against its contract schema and against its OpenAPI rendering', () => {
    const ajv = contractAjv();
    const component = openApiComponents();
    for (const c of contracts()) for (const [, schema] of schemasOf(c)) ajv.addSchema(schema);
    for (const c of contracts()) {
      for (const [kind, schema] of schemasOf(c)) {
        const where = `${c.meta.service} v${c.meta.version} ${kind}`;
        const examples = schema.examples as unknown[] | undefined;
        expect(examples?.length, `${where} has examples`).toBeGreaterThan(0);
        const validate = ajv.getSchema(schema.$id as string)!;
        const rendered = component(`${c.meta.service}.v${c.meta.version}.${kind}`);
        for (const example of examples!) {
          expect(validate(example), `${where}: ${JSON.stringify(validate.errors)}`).toBe(true);
          expect(rendered(example), `${where} (OpenAPI): ${JSON.stringify(rendered.errors)}`).toBe(true);
        }
      }
    }
  });
});

describe('buildOpenApi for any contract folder', () => {
  const contract = (service: string, request: Json, response: Json): Contract => ({
    meta: { service, version: 1, title: service, description: service, agencies: ['land'], fieldGroups: {} },
    requestSchema: request, responseSchema: response,
    validateRequest: (() => true) as unknown as ValidateFunction, validateResponse: (() => true) as unknown as ValidateFunction,
  });
  const common = { $id: 'urn:gateway:contracts:common', $defs: { id: { type: 'string' }, pair: { type: 'array', items: { $ref: '#/$defs/id' } } } };

  it('names local $defs uniquely and resolves references between contracts and into common definitions', async () => {
    const a = contract('a.one', { $id: 'urn:gateway:contracts:a.one:v1:request', type: 'object', properties: { x: { $ref: '#/$defs/item' }, default: { $ref: '#/$defs/item' } }, $defs: { item: { $ref: 'urn:gateway:contracts:common#/$defs/pair' } } },
      { $id: 'urn:gateway:contracts:a.one:v1:response', type: 'object', properties: { x: { $ref: '#/$defs/item' } }, $defs: { item: { type: 'integer' } } });
    const b = contract('b.two', { $id: 'urn:gateway:contracts:b.two:v1:request', type: 'object', properties: { y: { $ref: 'urn:gateway:contracts:a.one:v1:response#/$defs/item' } } },
      { $id: 'urn:gateway:contracts:b.two:v1:response', properties: { whole: { $ref: 'urn:gateway:contracts:a.one:v1:response' }, id: { $ref: 'urn:gateway:contracts:common#/$defs/pair/items' } }, examples: [{ $ref: 'kept as data' }] });
    const built = buildOpenApi(new Map([['a.one/v1', a], ['b.two/v1', b]]), { commonDefinitions: common }) as Json;
    const s = built.components.schemas;
    expect(s['a.one.v1.request.item']).toEqual({ $ref: '#/components/schemas/pair' });
    expect(s['a.one.v1.request'].properties.default).toEqual({ $ref: '#/components/schemas/a.one.v1.request.item' });
    expect(s['a.one.v1.response.item']).toEqual({ type: 'integer' });
    expect(s.pair.items).toEqual({ $ref: '#/components/schemas/id' });
    expect(s['b.two.v1.request'].properties.y).toEqual({ $ref: '#/components/schemas/a.one.v1.response.item' });
    expect(s['b.two.v1.response'].properties).toEqual({ whole: { $ref: '#/components/schemas/a.one.v1.response' }, id: { $ref: '#/components/schemas/pair/items' } });
    expect(s['b.two.v1.response'].examples).toEqual([{ $ref: 'kept as data' }]);
    expect(s['a.one.v1.request']).not.toHaveProperty('$id');
    expect(s['a.one.v1.request']).not.toHaveProperty('$defs');
    // The validator's $ref check also walks example data, so the deliberate `$ref` example goes first.
    delete s['b.two.v1.response'].examples;
    const result = await new Validator().validate(built);
    expect(result.errors).toBeUndefined();
  });

  it('fails at build time for a $ref that names no schema', () => {
    const bad = contract('c.three', { $id: 'urn:gateway:contracts:c.three:v1:request', properties: { z: { $ref: 'urn:gateway:contracts:nowhere#/$defs/z' } } }, {});
    expect(() => buildOpenApi(new Map([['c.three/v1', bad]]), { commonDefinitions: common })).toThrow(/nowhere/);
  });
});
