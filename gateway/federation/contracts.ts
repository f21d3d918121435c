import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from '../audit/entry.ts';
import { ConfigError } from '../config/errors.ts';
import { contractAjv, contractKey, type Contract, type ContractMeta } from '../contracts.ts';
import type { Logger } from '../logger.ts';
import type { RemoteGatewayConfig } from './types.ts';

/** A contract as a gateway publishes it (GET /services/{id}/v{major}), without the members that say where it is served. */
export type ContractDocument = ContractMeta & { requestSchema: Record<string, unknown>; responseSchema: Record<string, unknown> };

export const contractDocument = (c: Contract): ContractDocument => ({ ...c.meta, requestSchema: c.requestSchema, responseSchema: c.responseSchema });

/**
 * What a pin holds: SHA-256 (hex) of the RFC 8785 canonical JSON of the contract document (its
 * contract.json members with both schemas). A gateway publishes it beside the contract, so an
 * operator copies it from the remote's discovery into `upstreams.<agency>.gateway.services[]`.
 */
export function contractSha256(doc: ContractDocument | Contract): string {
  const plain = 'validateResponse' in doc ? contractDocument(doc) : doc;
  const { path: _path, contractSha256: _sha, gateway: _gw, ...rest } = plain as ContractDocument & { path?: unknown; contractSha256?: unknown; gateway?: unknown };
  return sha256Hex(canonicalJson(rest));
}

function compile(doc: ContractDocument): Contract {
  const ajv = contractAjv();
  const { requestSchema, responseSchema, ...meta } = doc;
  return { meta: meta as ContractMeta, requestSchema, responseSchema, validateRequest: ajv.compile(requestSchema), validateResponse: ajv.compile(responseSchema) };
}

/** A remote's pinned contract, checked at start, with where it came from. */
export interface PinnedContract { contract: Contract; key: string; from: 'remote' | 'cache' | 'local' }

const cacheFile = (dir: string, service: string, version: number) => join(dir, `${encodeURIComponent(service)}.v${version}.json`);

function readCache(file: string): ContractDocument | null {
  try {
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ContractDocument) : null;
  } catch {
    return null;
  }
}

async function fetchDocument(url: string, timeoutMs: number): Promise<{ status: number; doc?: ContractDocument }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error', headers: { Accept: 'application/json' } });
  if (res.status !== 200) return { status: res.status };
  return { status: 200, doc: (await res.json()) as ContractDocument };
}

/**
 * Checks every contract pinned for a remote gateway against what it publishes, at start, so a
 * retired version or a changed contract stops the start (ConfigError naming the key) instead of
 * failing requests later. When the remote cannot be reached, the gateway starts on the pinned
 * contract if it holds a copy with the pinned hash (the copy kept from the last successful check,
 * or its own identical contract) and warns; without one it refuses to start.
 */
export async function pinRemoteContracts(
  path: string,
  remote: RemoteGatewayConfig,
  o: { local: ReadonlyMap<string, Contract>; cacheDir: string; logger: Logger; timeoutMs?: number },
): Promise<PinnedContract[]> {
  const pinned: PinnedContract[] = [];
  const base = remote.url.replace(/\/+$/, '');
  mkdirSync(o.cacheDir, { recursive: true });
  for (const [i, pin] of remote.services.entries()) {
    const key = contractKey(pin.service, pin.version);
    const where = `${path}/services/${i}`;
    const file = cacheFile(o.cacheDir, pin.service, pin.version);
    const local = o.local.get(key);
    let answer: { status: number; doc?: ContractDocument };
    try {
      answer = await fetchDocument(`${base}/services/${encodeURIComponent(pin.service)}/v${pin.version}`, o.timeoutMs ?? 5000);
    } catch (e) {
      answer = { status: 0 };
      o.logger.debug({ err: e, gateway: remote.gatewayId }, 'remote gateway unreachable');
    }
    if (answer.status === 404) {
      throw new ConfigError(`${where}/version: ${remote.gatewayId} does not publish ${pin.service} v${pin.version} (retired, or never published); pin a version it publishes (GET ${base}/services)`);
    }
    if (answer.status === 200 && answer.doc) {
      const actual = contractSha256(answer.doc);
      if (actual !== pin.contractSha256) {
        throw new ConfigError(`${where}/contractSha256: ${remote.gatewayId} publishes ${pin.service} v${pin.version} with contract SHA-256 ${actual}, not the pinned ${pin.contractSha256} (the contract changed: review it, then pin the new hash)`);
      }
      writeFileSync(file, JSON.stringify(answer.doc));
      pinned.push({ key, from: 'remote', contract: local && contractSha256(local) === actual ? local : compile(answer.doc) });
      continue;
    }
    // Unreachable (or answering 5xx): the pinned contract, if a copy with its hash is at hand.
    const cached = readCache(file);
    const copy = cached && contractSha256(cached) === pin.contractSha256 ? { contract: compile(cached), from: 'cache' as const }
      : local && contractSha256(local) === pin.contractSha256 ? { contract: local, from: 'local' as const } : null;
    if (!copy) {
      throw new ConfigError(`${where}: ${remote.gatewayId} cannot be reached at start (${answer.status ? `HTTP ${answer.status}` : 'no answer'}) and no copy of the pinned ${pin.service} v${pin.version} (SHA-256 ${pin.contractSha256}) is held; start it first`);
    }
    o.logger.warn({ gateway: remote.gatewayId, service: pin.service, version: pin.version, status: answer.status || null, from: copy.from }, 'remote gateway unreachable at start: using the pinned contract as last checked');
    pinned.push({ key, ...copy });
  }
  return pinned;
}
