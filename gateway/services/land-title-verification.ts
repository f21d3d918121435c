import { asGatewayError, GatewayError } from '../errors.ts';
import { compareNames, type NameMatch } from '../domain/names.ts';
import { parcelRefOf, type ParcelRef } from '../domain/index.ts';
import type { AgencyName } from '../config/types.ts';
import type { IdentityRecord } from '../../adapters/population/index.ts';
import type { ParcelOwner, ParcelRecord } from '../../adapters/land/index.ts';
import type { Registration } from '../../adapters/justice/index.ts';
import type { ObligationsAnswer } from '../../adapters/tax/index.ts';
import type { HandlerAnswer, ServiceContext, ServiceHandler } from './types.ts';

type TitleRequest = { certificateSerial: string } | { parcel: ParcelRef };
type Reason = 'incomplete' | 'owner_mismatch' | 'encumbered' | 'obligations_outstanding' | 'clear';
type OwnerIssue = 'not_found' | 'deceased' | 'name_different';
type Group = 'parcel' | 'certificate' | 'owners' | 'registrations' | 'obligations';
interface Source { agency: AgencyName; retrievedAt: string; reference?: string }
interface FailedSource { agency: AgencyName; code: string }

/** Most severe first: the verdict is the first reason that holds. */
const SEVERITY: readonly Reason[] = ['incomplete', 'owner_mismatch', 'encumbered', 'obligations_outstanding', 'clear'];
const GROUPS: readonly Group[] = ['parcel', 'certificate', 'owners', 'registrations', 'obligations'];
/** The source data each released group carries, as the audit record names it. */
const SOURCE_FIELDS: Record<Group, string[]> = {
  parcel: ['land.parcel:parcel'],
  certificate: ['land.parcel:certificate'],
  owners: ['land.parcel:owners', 'population.identity:core', 'population.identity:vital'],
  registrations: ['justice.secured-transactions:registrations'],
  obligations: ['tax.obligations:obligations'],
};

interface VerificationResponse extends Record<string, unknown> {
  verdict: Reason;
  reasons: Reason[];
  failedSources: FailedSource[];
  checkedAt: string;
  fieldGroups: Record<Group, 'released' | 'withheld' | 'unavailable'>;
}

/** What one source gave: an answer checked against that service's contract, or the code it failed with. */
type Gathered<T> = { ok: true; answer: T } | { ok: false; code: string };

interface LandAnswer { parcels: ParcelRecord[]; source: Source }
interface JusticeAnswer { registrations: Registration[]; source: Source }
interface Evidence {
  parcel: ParcelRecord;
  landSource: Source;
  identities: Gathered<IdentityRecord>[];
  registrations: Gathered<JusticeAnswer>;
  obligations: Gathered<ObligationsAnswer>;
}

/**
 * land.title-verification v1: the land registry first (parcel and owners), then in parallel every
 * owner's identity, the mortgages and the obligations on the parcel; one verdict that is never
 * clear unless every source answered within its contract.
 */
export const landTitleVerification: ServiceHandler<TitleRequest, VerificationResponse> = {
  service: 'land.title-verification',
  version: 1,
  async handle(ctx) {
    const checkedAt = new Date().toISOString();
    const land = await gather(ctx, 'land.parcel', () => findParcel(ctx));
    if (!land.ok) return withheldBy(ctx, { verdict: 'incomplete', reasons: ['incomplete'], failedSources: [{ agency: 'land', code: land.code }], checkedAt, fieldGroups: unavailableGroups() });
    const parcel = land.answer.parcels[0];
    if (!parcel) throw new GatewayError('SUBJECT_NOT_FOUND', 'the land registry holds no such parcel');
    const ref = parcelRefOf(parcel);
    const { adapters, trace } = ctx;
    const [identities, registrations, obligations] = await Promise.all([
      Promise.all(parcel.owners.map((o) => gather(ctx, 'population.identity', () => adapters.population.getIdentity(o.personalId, trace)))),
      gather(ctx, 'justice.secured-transactions', async () => {
        const { registrations: found, reference, retrievedAt } = await adapters.justice.findRegistrations({ parcel: ref }, trace);
        return { registrations: found, source: { agency: 'justice' as const, retrievedAt, reference } };
      }),
      gather(ctx, 'tax.obligations', () => adapters.tax.getObligations({ parcel: ref }, trace)),
    ]);
    return verdictOf(ctx, { parcel, landSource: land.answer.source, identities, registrations, obligations }, checkedAt);
  },
  // Whom a title concerns is known only from the land registry's answer (HandlerAnswer.subjects).
  subjects: () => [],
};

async function findParcel(ctx: ServiceContext<TitleRequest>): Promise<LandAnswer> {
  const { parcels, reference, retrievedAt } = await ctx.adapters.land.findParcels(ctx.request, ctx.trace);
  return { parcels, source: { agency: 'land', retrievedAt, ...(reference ? { reference } : {}) } };
}

/**
 * Runs one source and checks its answer against that service's own contract: an adapter maps
 * the upstream's shape, the contract is what the verdict may rely on.
 */
async function gather<T>(ctx: ServiceContext, service: string, fetch: () => Promise<T>): Promise<Gathered<T>> {
  const contract = ctx.contractOf(service);
  if (!contract) throw new Error(`no contract for ${service}`);
  try {
    const answer = await fetch();
    return contract.validateResponse(answer) ? { ok: true, answer } : { ok: false, code: 'UPSTREAM_BAD_RESPONSE' };
  } catch (e) {
    return { ok: false, code: asGatewayError(e).code };
  }
}

function verdictOf(ctx: ServiceContext, ev: Evidence, checkedAt: string): HandlerAnswer<VerificationResponse> {
  const failed: FailedSource[] = [];
  const owners = ev.parcel.owners.map((owner, i) => checkOwner(owner, ev.identities[i]!, failed));
  if (!ev.registrations.ok) failed.push({ agency: 'justice', code: ev.registrations.code });
  if (!ev.obligations.ok) failed.push({ agency: 'tax', code: ev.obligations.code });
  const failedSources = uniqueFailures(failed);

  const holds: Record<Reason, boolean> = {
    incomplete: failedSources.length > 0,
    owner_mismatch: owners.some((o) => o.issues.length > 0),
    encumbered: ev.registrations.ok && ev.registrations.answer.registrations.some((r) => r.status !== 'released'),
    obligations_outstanding: ev.obligations.ok && ev.obligations.answer.obligations.some((o) => !o.paid),
    clear: false,
  };
  holds.clear = !SEVERITY.some((r) => holds[r]);
  const reasons = SEVERITY.filter((r) => holds[r]);

  const { parcel: p } = ev;
  const full: VerificationResponse = {
    verdict: reasons[0]!, reasons, failedSources, checkedAt,
    fieldGroups: { parcel: 'released', certificate: 'released', owners: 'released', registrations: ev.registrations.ok ? 'released' : 'unavailable', obligations: ev.obligations.ok ? 'released' : 'unavailable' },
    parcel: { ...parcelRefOf(p), address: p.address, area: p.area, landUse: p.landUse, term: p.term, certificate: p.certificate, source: ev.landSource },
    owners,
    ...(ev.registrations.ok ? { registrations: registrationsEvidence(ev.registrations.answer) } : {}),
    ...(ev.obligations.ok ? { obligations: obligationsEvidence(ev.obligations.answer) } : {}),
  };
  // The owners are concerned (and named in the audit record) even when the owners group is withheld.
  return { ...withheldBy(ctx, full), subjects: p.owners.map((o) => o.personalId) };
}

/** One owner against the population database; a failed look-up is a failed source, not a mismatch. */
function checkOwner(owner: ParcelOwner, found: Gathered<IdentityRecord>, failed: FailedSource[]) {
  const base = { personalId: owner.personalId, name: owner.name, share: owner.share };
  if (!found.ok) {
    if (found.code === 'SUBJECT_NOT_FOUND') {
      return { ...base, identity: { found: false, source: { agency: 'population', retrievedAt: new Date().toISOString() } }, issues: ['not_found'] as OwnerIssue[] };
    }
    failed.push({ agency: 'population', code: found.code });
    return { ...base, issues: [] as OwnerIssue[] };
  }
  const person = found.answer;
  const nameMatch: NameMatch = compareNames(owner.name, person.fullName);
  const issues: OwnerIssue[] = [];
  if (person.lifeStatus === 'deceased') issues.push('deceased');
  if (nameMatch === 'different') issues.push('name_different');
  const identity = {
    found: true, fullName: person.fullName, nameMatch, lifeStatus: person.lifeStatus,
    ...(person.dateOfDeath ? { dateOfDeath: person.dateOfDeath } : {}), source: person.source,
  };
  return { ...base, identity, issues };
}

function registrationsEvidence({ registrations, source }: JusticeAnswer) {
  return {
    items: registrations.map((r) => ({
      registrationNumber: r.registrationNumber, registeredAt: r.registeredAt, status: r.status,
      ...(r.releasedAt ? { releasedAt: r.releasedAt } : {}), securedParty: r.securedParty,
    })),
    source,
  };
}

function obligationsEvidence({ obligations, summary, source }: ObligationsAnswer) {
  return {
    items: obligations.map((o) => ({
      noticeNumber: o.noticeNumber, kind: o.kind, taxCode: o.taxCode, amount: o.amount, issuedAt: o.issuedAt, dueDate: o.dueDate, paid: o.paid,
      ...(o.paidAt ? { paidAt: o.paidAt } : {}),
    })),
    summary,
    source,
  };
}

/**
 * Minimisation: the verdict always goes out, since deciding it is what the land office is granted;
 * the evidence of each group not granted is removed. Reports what was released.
 */
function withheldBy(ctx: ServiceContext, response: VerificationResponse): HandlerAnswer<VerificationResponse> {
  const granted = (g: Group) => ctx.grantedGroups.has(g);
  const parcel = response.parcel as Record<string, unknown> | undefined;
  if (parcel && !granted('parcel')) for (const member of ['address', 'area', 'landUse', 'term']) delete parcel[member];
  if (parcel && !granted('certificate')) delete parcel.certificate;
  if (!granted('owners')) delete response.owners;
  if (!granted('registrations')) delete response.registrations;
  if (!granted('obligations')) delete response.obligations;
  for (const g of GROUPS) if (!granted(g)) response.fieldGroups[g] = 'withheld';

  const released = GROUPS.filter((g) => response.fieldGroups[g] === 'released').flatMap((g) => SOURCE_FIELDS[g]);
  const anyoneIdentified = (response.owners as { identity?: { found: boolean } }[] | undefined)?.some((o) => o.identity?.found);
  const fields = released.filter((f) => anyoneIdentified || !f.startsWith('population.'));
  return { body: response, fields };
}

const unavailableGroups = (): VerificationResponse['fieldGroups'] => ({ parcel: 'unavailable', certificate: 'unavailable', owners: 'unavailable', registrations: 'unavailable', obligations: 'unavailable' });

function uniqueFailures(failed: FailedSource[]): FailedSource[] {
  const seen = new Set<string>();
  return failed.filter((f) => {
    const key = `${f.agency}\u0000${f.code}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
