/** Bench helper: runs one agency simulator alone in this process (so load, gateway and upstream do not share a core). */
import { agencyNamed, listenOnLoopback } from '../../adapters/index.ts';

const [agency, port, latency] = process.argv.slice(2);
const plugin = agencyNamed(agency ?? '');
if (!plugin) throw new Error(`no simulator for ${agency}`);
const { url } = await listenOnLoopback(plugin.createSimulator({ latencyMs: Number(latency ?? 0) }), Number(port ?? 0));
process.stdout.write(`${url}\n`);
