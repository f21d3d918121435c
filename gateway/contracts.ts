import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { isPersonalId, isTaxCode } from './domain/index.ts';
import { agencyNames } from '../adapters/index.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export const CONTRACTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'contracts');

export interface ContractMeta {
  service: string;
  version: number;
  title: string;
  description: string;
  agencies: string[];
  fieldGroups: Record<string, string[]>;
  /** Paper documents a citizen no longer carries when this service answers (usage report). */
  documentsReplaced?: string[];
  /** Requests need citizen consent (X-Citizen-Consent). */
  consent?: boolean;
  /** A write: needs an Idempotency-Key header. */
  write?: boolean;
}

/** One versioned contract: its metadata and both schemas, compiled once. */
export interface Contract {
  meta: ContractMeta;
  requestSchema: Record<string, unknown>;
  responseSchema: Record<string, unknown>;
  validateRequest: ValidateFunction;
  validateResponse: ValidateFunction;
}

export const contractKey = (service: string, version: number) => `${service}/v${version}`;

/** The ajv instance every contract is compiled with: 2020-12, formats, and the domain's own formats. */
export function contractAjv(): Ajv2020 {
  const ajv = addFormats(new Ajv2020({ allErrors: false, strict: false }));
  ajv.addFormat('vn-personal-id', { type: 'string', validate: isPersonalId });
  ajv.addFormat('vn-tax-code', { type: 'string', validate: isTaxCode });
  ajv.addSchema(commonDefinitions());
  return ajv;
}

/** The contracts' shared definitions, the enum of registered agencies filled in (adapters/index.ts). */
export function commonDefinitions(): Record<string, any> {
  const definitions = JSON.parse(readFileSync(join(CONTRACTS_DIR, '_common', 'definitions.schema.json'), 'utf8'));
  definitions.$defs.agency.enum = agencyNames();
  return definitions;
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** Every `<service>/v<major>/` folder of `dirs` (contracts/, and plug-ins' own folders) with its metadata. */
function contractFolders(dirs: readonly string[]): { folder: string; meta: ContractMeta }[] {
  const found: { folder: string; meta: ContractMeta }[] = [];
  for (const dir of dirs) for (const service of readdirSync(dir)) {
    if (service.startsWith('_')) continue;
    for (const v of readdirSync(join(dir, service))) {
      const folder = join(dir, service, v);
      if (/^v\d+$/.test(v) && existsSync(join(folder, 'contract.json'))) found.push({ folder, meta: readJson(join(folder, 'contract.json')) as ContractMeta });
    }
  }
  return found;
}

/** The field groups each service declares (every version's together), read without compiling a schema. */
export function declaredFieldGroups(dirs: readonly string[] = [CONTRACTS_DIR]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const { meta } of contractFolders(dirs)) groups.set(meta.service, [...new Set([...(groups.get(meta.service) ?? []), ...Object.keys(meta.fieldGroups)])]);
  return groups;
}

/** Loads and compiles every contract of `dirs`. */
export function loadContracts(dirs: readonly string[] = [CONTRACTS_DIR]): Map<string, Contract> {
  const ajv = contractAjv();
  const contracts = new Map<string, Contract>();
  for (const { folder, meta } of contractFolders(dirs)) {
    const requestSchema = readJson(join(folder, 'request.schema.json'));
    const responseSchema = readJson(join(folder, 'response.schema.json'));
    contracts.set(contractKey(meta.service, meta.version), {
      meta, requestSchema, responseSchema,
      validateRequest: ajv.compile(requestSchema),
      validateResponse: ajv.compile(responseSchema),
    });
  }
  return contracts;
}

/** A short, safe description of the first schema error (no values echoed back). */
export function describeSchemaError(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  if (!e) return 'request does not match the contract';
  const where = e.instancePath || '/';
  if (e.keyword === 'additionalProperties') return `${where}: unknown member "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  if (e.keyword === 'required') return `${where}: missing member "${(e.params as { missingProperty: string }).missingProperty}"`;
  return `${where}: ${e.message}`;
}
