import type { Declaration, TransferSheet } from '../../adapters/tax/index.ts';
import { GatewayError, isGatewayError } from '../errors.ts';
import { canonicalJson, sha256Hex } from '../audit/index.ts';
import type { ServiceContext, ServiceHandler } from './types.ts';

type DeclarationResponse = Declaration & Record<string, unknown>;

/**
 * tax.land-transfer-declaration v1: files the land office's transfer sheet with the tax authority,
 * once per Idempotency-Key. A repeat gets the stored first answer; a repeat after a timeout looks
 * the filing up before filing again; the upstream itself never files one reference twice.
 */
export const taxLandTransferDeclaration: ServiceHandler<TransferSheet, DeclarationResponse> = {
  service: 'tax.land-transfer-declaration',
  version: 1,
  async handle(ctx) {
    const { request, client, idempotency, adapters, trace } = ctx;
    const key = requireKey(ctx);
    const begun = await idempotency.begin(client.id, key, sha256Hex(canonicalJson(request)));
    if (typeof begun === 'object') return { body: begun.replay as DeclarationResponse };
    try {
      // Keys are per client; the tax authority's references are global, so the client id scopes them.
      const declaration = await adapters.tax.fileTransferDeclaration(request, `${client.id}:${key}`, trace, { uncertain: begun === 'uncertain' });
      await idempotency.complete(client.id, key, declaration as DeclarationResponse);
      return { body: declaration as DeclarationResponse };
    } catch (e) {
      if (certainlyNotFiled(e)) await idempotency.release(client.id, key);
      else await idempotency.markUncertain(client.id, key);
      throw e;
    }
  },
  checkRequest(request) {
    if (request.transferor.personalId === request.transferee.personalId) throw new GatewayError('REQUEST_INVALID', '/transferee: must differ from the transferor');
  },
  subjects: (request) => personalIds([partyId(request, 'transferor'), partyId(request, 'transferee')]),
  records: (response) => [response],
};

function requireKey(ctx: ServiceContext<TransferSheet>): string {
  // The pipeline (idempotency-key.ts) refuses a write without a key before the handler runs; this guards a misregistered contract.
  if (!ctx.idempotencyKey) throw new GatewayError('IDEMPOTENCY_KEY_REQUIRED', 'send an Idempotency-Key header');
  return ctx.idempotencyKey;
}

/** A refusal (4xx) means nothing was filed, so the key may be used again; anything else may have filed. */
const certainlyNotFiled = (e: unknown) => isGatewayError(e) && e.status < 500;

// The pipeline also calls subjects() on a request it has not validated yet, so nothing is assumed about its shape.
const partyId = (request: unknown, party: 'transferor' | 'transferee'): unknown =>
  (request as Record<string, { personalId?: unknown } | undefined> | null)?.[party]?.personalId;
const personalIds = (values: unknown[]): string[] => [...new Set(values.filter((v): v is string => typeof v === 'string'))];
