/** Bench helper: runs one agency simulator alone in this process (so load, gateway and upstream do not share a core). */
import { listenOnLoopback, simulatorFactories } from '../../adapters/index.ts';
import type { AgencyName } from '../../gateway/config/types.ts';

const [agency, port, latency] = process.argv.slice(2);
const factory = simulatorFactories[agency as AgencyName];
if (!factory) throw new Error(`no simulator for ${agency}`);
const { url } = await listenOnLoopback(factory({ latencyMs: Number(latency ?? 0) }), Number(port ?? 0));
process.stdout.write(`${url}\n`);
