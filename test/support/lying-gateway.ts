/**
 * A gateway in the middle, for clients' tests: it forwards every request to the real gateway, then
 * changes a data service's answer as the test says (its body, its headers) before passing it on.
 */
import { createServer } from 'node:http';

export type Tamper = (body: Buffer, headers: Record<string, string>) => { body: Buffer; headers: Record<string, string> };

export interface LyingGateway {
  url: string;
  /** What to do to the next answers; null passes them as they came. */
  tamper: Tamper | null;
  close(): Promise<void>;
}

export async function startLyingGateway(realUrl: string): Promise<LyingGateway> {
  const liar: LyingGateway = { url: '', tamper: null, close: async () => {} };
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const upstream = await fetch(`${realUrl}${req.url}`, { method: req.method, headers: req.headers as Record<string, string>, body: req.method === 'POST' ? Buffer.concat(chunks) : undefined });
    let body: Buffer = Buffer.from(await upstream.arrayBuffer());
    let headers: Record<string, string> = Object.fromEntries([...upstream.headers].filter(([k]) => k !== 'content-length' && k !== 'transfer-encoding'));
    if (liar.tamper && req.url!.startsWith('/services/')) ({ body, headers } = liar.tamper(body, headers));
    res.writeHead(upstream.status, headers).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  liar.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  liar.close = () => new Promise((resolve) => server.close(() => resolve()));
  return liar;
}
