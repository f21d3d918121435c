import { sha256Hex, type Outcome, type PendingEntry } from '../audit/index.ts';
import { escapeUnprintable } from '../domain/index.ts';
import { GatewayError } from '../errors.ts';
import type { Exchange, Step } from './types.ts';

/** 4xx refusals by policy are `denied`; upstream and gateway failures, and subjects a source does not know, are `failed`. */
export const outcomeOf = (e: GatewayError): Outcome => (e.status < 500 && e.code !== 'SUBJECT_NOT_FOUND' ? 'denied' : 'failed');

/** This exchange's audit entry. */
function entryOf(x: Exchange, outcome: Outcome, e: GatewayError | null, subjects: string[], responseSha256: string | null): PendingEntry {
  const { client, claims } = x.auth!;
  const { op, inbound, deps } = x;
  const pseudonyms = [...subjects.map(deps.audit.pseudonymize), ...(x.result?.pseudonyms ?? [])];
  return {
    id: x.requestId, time: x.time, client: client.id, ...(x.auth!.actingFor ? { actingFor: x.auth!.actingFor } : {}), userId: claims.user_id ?? null, purpose: claims.purpose ?? null, caseId: claims.case_id ?? null,
    service: op?.service ?? escapeUnprintable(inbound.requestedService, 100), version: op ? op.version : inbound.requestedVersion,
    subjects: [...new Set(pseudonyms)].sort(), fields: e ? op?.attempted ?? [] : x.result?.fields ?? [], outcome, status: e?.status ?? 200, errorCode: e?.code ?? null,
    upstreams: x.trace, latencyMs: Math.round(performance.now() - x.started), requestSha256: x.requestSha256, responseSha256,
  };
}

/** Commits the entry before anything is released; a store that cannot commit means AUDIT_UNAVAILABLE and nothing leaves. */
async function commit(x: Exchange, entry: PendingEntry) {
  try {
    return await x.deps.audit.record(entry);
  } catch (cause) {
    x.auditFailed = true;
    throw new GatewayError('AUDIT_UNAVAILABLE', 'audit commit failed', { cause });
  }
}

/** The released answer's entry, durable before release. A stream's hash cannot be known before it is sent: none is recorded. */
export const commitEntry: Step = async (x) => {
  const responseSha256 = x.responseBody ? sha256Hex(x.responseBody) : null;
  x.entry = await commit(x, entryOf(x, 'released', null, x.result!.subjects ?? [], responseSha256));
};

/** An authenticated caller's refusal is an entry too, naming whom the request concerned. */
export async function commitRefusal(x: Exchange, e: GatewayError, problemBody: Buffer): Promise<void> {
  let subjects: string[] = [];
  try {
    subjects = x.op?.requestSubjects?.(x.body) ?? [];
  } catch {
    // A body too odd to name anyone names no one.
  }
  await commit(x, entryOf(x, outcomeOf(e), e, subjects, sha256Hex(problemBody)));
}
