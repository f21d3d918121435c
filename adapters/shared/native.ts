import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { GatewayError } from '../../gateway/errors.ts';

const ajv = new Ajv2020({ allErrors: false, strict: false });

/** Compiles a schema of an upstream's native payload once; the checker throws UPSTREAM_BAD_RESPONSE. */
export function nativeShape<T>(agency: string, schema: object): (value: unknown) => T {
  const validate: ValidateFunction = ajv.compile(schema);
  return (value) => {
    if (!validate(value)) {
      const e = validate.errors![0]!;
      throw new GatewayError('UPSTREAM_BAD_RESPONSE', `${agency}: native answer ${e.instancePath || '/'} ${e.message}`);
    }
    return value as T;
  };
}

/** dd/mm/yyyy → YYYY-MM-DD, refusing impossible dates. */
export function isoFromDmy(agency: string, dmy: string): string {
  const m = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(dmy);
  const iso = m ? `${m[3]}-${m[2]}-${m[1]}` : '';
  const d = new Date(`${iso}T00:00:00Z`);
  if (!m || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== iso) {
    throw new GatewayError('UPSTREAM_BAD_RESPONSE', `${agency}: bad date`);
  }
  return iso;
}

/** Validates an adapter factory's options at start-up: misuse fails early, naming the option. */
export function requireOption(agency: string, name: string, ok: boolean): void {
  if (!ok) throw new TypeError(`${agency} adapter: option "${name}" is missing or invalid`);
}
