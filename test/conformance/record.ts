/**
 * Records an adapter's real exchange with its agency simulator (nock's recorder), so the
 * conformance suite replays genuine upstream payloads, then varies them.
 */
import nock from 'nock';
import { agencyNamed, listenOnLoopback } from '../../adapters/index.ts';
import type { AgencyName } from '../../gateway/config/types.ts';

export interface Recorded { method: string; path: string; status: number; response: unknown; headers: Record<string, string> }

/** Runs `call(baseUrl)` against the live simulator of `agency` and returns every HTTP exchange it made. */
export async function recordExchanges(agency: AgencyName, call: (baseUrl: string) => Promise<unknown>): Promise<Recorded[]> {
  const sim = await listenOnLoopback(agencyNamed(agency)!.createSimulator({}));
  nock.recorder.clear();
  nock.recorder.rec({ output_objects: true, dont_print: true, enable_reqheaders_recording: false });
  try {
    await call(sim.url).catch(() => undefined);
    return (nock.recorder.play() as nock.Definition[]).map((d) => ({
      method: (d.method ?? 'GET').toUpperCase(), path: String(d.path), status: d.status ?? 200, response: d.response,
      headers: Object.fromEntries(Object.entries((d as { rawHeaders?: Record<string, string> | string[] }).rawHeaders ?? {}).filter(([k]) => /content-type/i.test(k))) as Record<string, string>,
    }));
  } finally {
    nock.restore();
    nock.recorder.clear();
    nock.activate();
    await sim.close();
  }
}
