import { asGatewayError, GatewayError } from '../errors.ts';
import { minimize } from '../pipeline/minimize.ts';
import type { Contract } from '../contracts.ts';
import type { AgencyName, FormConfig, FormField } from '../config/types.ts';
import type { Consent } from '../pipeline/consent.ts';
import type { ServiceContext, ServiceHandler } from './types.ts';

interface PrefillRequest { form: string; personalId?: string }

type Withheld = 'not_consented' | 'not_granted';
/** `agency` is absent only for a misconfigured field naming a service that is no agency's data. */
interface FieldSource { agency?: AgencyName; service: string; retrievedAt?: string; reference?: string }
interface PrefilledField {
  name: string;
  label: string;
  fieldGroup: string;
  status: 'available' | 'unavailable' | 'withheld';
  value?: unknown;
  /** not_consented / not_granted (withheld), no_data or a catalogue code (unavailable). */
  reason?: string;
  source: FieldSource;
}
interface PrefillResponse extends Record<string, unknown> {
  personalId: string;
  form: { id: string; title: string; procedureCode?: string; documentsReplaced: string[] };
  fields: PrefilledField[];
}

type Answer = Record<string, unknown> & { source?: { retrievedAt?: string; reference?: string } };
/** A source's answer, checked against its contract, or the catalogue code it failed with. */
type Fetched = { answer: Answer } | { code: string };

/** How the prefill asks one source service about the consenting citizen, and where its records are. */
interface PrefillSource {
  agency: AgencyName;
  fetch(personalId: string, ctx: ServiceContext): Promise<Answer>;
  /** The records the source's field groups apply to (as that service's own handler minimises them). */
  records(answer: Answer): Record<string, unknown>[];
}

// Each source is asked by the citizen's personal id, which since 2025 is also their tax code.
const SOURCES: Readonly<Record<string, PrefillSource>> = {
  'population.identity': {
    agency: 'population',
    fetch: async (id, { adapters, trace }) => ({ ...(await adapters.population.getIdentity(id, trace)) }),
    records: (answer) => [answer],
  },
  'land.parcel': {
    agency: 'land',
    async fetch(id, { adapters, trace }) {
      const { parcels, reference, retrievedAt } = await adapters.land.findParcels({ ownerPersonalId: id }, trace);
      return { parcels, source: { agency: 'land', retrievedAt, ...(reference ? { reference } : {}) } };
    },
    records: (answer) => answer.parcels as Record<string, unknown>[],
  },
  'tax.obligations': {
    agency: 'tax',
    fetch: async (id, { adapters, trace }) => ({ ...(await adapters.tax.getObligations({ taxCode: id }, trace)) }),
    records: (answer) => [answer],
  },
  'justice.secured-transactions': {
    agency: 'justice',
    async fetch(id, { adapters, trace }) {
      const { registrations, reference, retrievedAt } = await adapters.justice.findRegistrations({ grantorPersonalId: id }, trace);
      return { registrations, source: { agency: 'justice', retrievedAt, reference } };
    },
    records: (answer) => [answer],
  },
};

/**
 * portal.prefill v1: fills a configured form with what the agencies hold about the citizen who
 * consented. A field group is used only when consented AND granted; only sources with a usable
 * field are asked, once each and in parallel; a failing source leaves its fields unavailable.
 */
export const portalPrefill: ServiceHandler<PrefillRequest, PrefillResponse> = {
  service: 'portal.prefill',
  version: 1,
  checkRequest(request, { consent }) {
    if (consent && request.personalId !== undefined && request.personalId !== consent.sub) {
      throw new GatewayError('CONSENT_INVALID', 'personalId is not the citizen who consented (sub)');
    }
  },
  async handle(ctx) {
    const { consent } = ctx;
    if (!consent) throw new GatewayError('CONSENT_REQUIRED', 'send X-Citizen-Consent: <consent token>');
    const form = ctx.forms.find((f) => f.id === ctx.request.form);
    if (!form) throw new GatewayError('REQUEST_INVALID', 'no such form');

    const withheld = new Map(form.fields.map((f) => [f, withheldReason(f, ctx, consent)] as const));
    const services = [...new Set(form.fields.filter((f) => !withheld.get(f)).map((f) => f.service))];
    const fetched = new Map(await Promise.all(services.map(async (s) => [s, await fetchSource(s, consent.sub, ctx)] as const)));

    const view = sourceView(ctx);
    const fields = form.fields.map((f) => prefillField(f, withheld.get(f) ?? null, fetched.get(f.service), view));
    const response: PrefillResponse = { personalId: consent.sub, form: formSummary(form), fields };
    const released = fields.filter((f) => f.status === 'available').map((f) => `${f.source.service}:${f.fieldGroup}`);
    return { body: response, fields: [...new Set(released)].sort() };
  },
  subjects: (request, response) => {
    const id = response?.personalId ?? (request as { personalId?: unknown } | null)?.personalId;
    return typeof id === 'string' ? [id] : [];
  },
};

/**
 * Why a field is not fetched, or null when it is. Policy comes first: a group the portal may not
 * have, or that the prefill cannot draw on from that source, is not_granted whatever the consent says.
 */
function withheldReason(field: FormField, ctx: ServiceContext, consent: Consent): Withheld | null {
  const sourceGroups = ctx.contractOf(field.service)?.meta.fieldGroups ?? {};
  const drawable = field.service in SOURCES && field.fieldGroup in sourceGroups && field.fieldGroup in ctx.contract.meta.fieldGroups;
  if (!drawable || !ctx.grantedGroups.has(field.fieldGroup)) return 'not_granted';
  if (!consent.scope.has(field.fieldGroup)) return 'not_consented';
  return null;
}

/** Asks one source; an answer outside that service's own contract counts as a failure of the source. */
async function fetchSource(service: string, personalId: string, ctx: ServiceContext): Promise<Fetched> {
  try {
    const answer = await SOURCES[service]!.fetch(personalId, ctx);
    const contract = ctx.contractOf(service);
    if (!contract?.validateResponse(answer)) return { code: 'UPSTREAM_BAD_RESPONSE' };
    return { answer };
  } catch (e) {
    return { code: asGatewayError(e).code };
  }
}

/**
 * The source's answer reduced to one field group, exactly as that service minimises it for a
 * client granted only that group; memoised per service and group.
 */
function sourceView(ctx: ServiceContext) {
  const views = new Map<string, Answer>();
  return (service: string, group: string, answer: Answer): Answer => {
    const key = `${service}\u0000${group}`;
    let view = views.get(key);
    if (!view) {
      view = structuredClone(answer);
      minimize(SOURCES[service]!.records(view), (ctx.contractOf(service) as Contract).meta.fieldGroups, new Set([group]));
      views.set(key, view);
    }
    return view;
  };
}

function prefillField(field: FormField, withheld: Withheld | null, fetched: Fetched | undefined, view: ReturnType<typeof sourceView>): PrefilledField {
  const base = { name: field.name, label: field.label ?? field.name, fieldGroup: field.fieldGroup };
  const agency = SOURCES[field.service]?.agency;
  const source: FieldSource = { ...(agency ? { agency } : {}), service: field.service };
  if (withheld) return { ...base, status: 'withheld', reason: withheld, source };
  if (!fetched || 'code' in fetched) return { ...base, status: 'unavailable', reason: fetched?.code ?? 'INTERNAL', source };
  const { retrievedAt, reference } = fetched.answer.source ?? {};
  const traced: FieldSource = { ...source, ...(retrievedAt ? { retrievedAt } : {}), ...(reference ? { reference } : {}) };
  const value = valueAt(view(field.service, field.fieldGroup, fetched.answer), field.path);
  if (isEmpty(value)) return { ...base, status: 'unavailable', reason: 'no_data', source: traced };
  return { ...base, status: 'available', value, source: traced };
}

/** Follows a dotted path through own members only (a path never reaches prototypes). */
function valueAt(record: unknown, path: string): unknown {
  let at: unknown = record;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

const isEmpty = (v: unknown) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);

function formSummary(form: FormConfig): PrefillResponse['form'] {
  return { id: form.id, title: form.title, ...(form.procedureCode ? { procedureCode: form.procedureCode } : {}), documentsReplaced: [...form.documentsReplaced] };
}
