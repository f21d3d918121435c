/**
 * A loopback TCP relay in front of a real service (PostgreSQL, Redis) that a test can break the
 * way networks break: cut every connection (a reset, as a failover or a proxy restart does, or a
 * clean close), or stall (connections accepted, nothing forwarded either way, as a hung primary
 * or a black-holed route does), then heal.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface FaultProxy {
  /** The relay's loopback port; point the client at it instead of the service. */
  port: number;
  /** Cuts every open connection: `reset` sends TCP RSTs, `close` a FIN. Returns how many were cut. */
  drop(how?: 'reset' | 'close'): number;
  /** From now on nothing is forwarded; new connections are accepted and left waiting. */
  stall(): void;
  /** The service is down: every open connection is reset, and every new one at once. */
  refuse(): void;
  /** Forwards again, what was held included, and connects the connections that waited. */
  resume(): void;
  /** Connections open now. */
  readonly open: number;
  close(): Promise<void>;
}

interface Pair { inbound: Socket; outbound?: Socket }

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  let stalled = false;
  let refusing = false;

  /** Copies `from` to `to`; pausing the source keeps what a stall holds in the kernel's buffers, as a real stall would. */
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => { if (!stalled) from.resume(); });
      }
    });
  };
  const link = (pair: Pair) => {
    const outbound = connect(target.port, target.host);
    pair.outbound = outbound;
    outbound.on('error', () => {});
    outbound.on('close', () => pair.inbound.destroy());
    forward(pair.inbound, outbound);
    forward(outbound, pair.inbound);
  };

  const server: Server = createServer((inbound) => {
    if (refusing) return void inbound.on('error', () => {}).resetAndDestroy();
    const pair: Pair = { inbound };
    pairs.add(pair);
    inbound.on('error', () => {});
    inbound.on('close', () => {
      pairs.delete(pair);
      pair.outbound?.destroy();
    });
    if (stalled) inbound.pause();
    else link(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  const drop = (how: 'reset' | 'close' = 'reset') => {
    const n = pairs.size;
    for (const { inbound, outbound } of pairs) {
      for (const s of [inbound, outbound]) {
        if (!s) continue;
        if (how === 'reset') s.resetAndDestroy();
        else s.destroy();
      }
    }
    return n;
  };

  return {
    port,
    drop,
    stall() {
      stalled = true;
      for (const { inbound, outbound } of pairs) {
        inbound.pause();
        outbound?.pause();
      }
    },
    refuse() {
      refusing = true;
      drop('reset');
    },
    resume() {
      stalled = false;
      refusing = false;
      for (const pair of pairs) {
        if (!pair.outbound) link(pair);
        pair.inbound.resume();
        pair.outbound!.resume();
      }
    },
    get open() { return pairs.size; },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const { inbound, outbound } of pairs) {
          inbound.destroy();
          outbound?.destroy();
        }
      });
    },
  };
}
