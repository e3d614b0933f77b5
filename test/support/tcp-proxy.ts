/**
 * An in-process TCP proxy that can drop packets: a network partition that
 * sends no reset, as a dead switch, a lost route or a stuck NAT entry do.
 *
 * - `pause()`: nothing is forwarded any more, either way; no socket is
 *   closed, so neither end learns anything. Connections opened during the
 *   partition are accepted (the kernel would have sent SYN-ACK before) but
 *   never reach the server. `pause('replies')` loses only what the server
 *   sends: statements still arrive and commit, their answers never do (the
 *   case where a client cannot know whether its write happened).
 * - `restartOn(marker, downMs)`: the first time a client sends bytes holding
 *   `marker` (a statement's text), every connection is reset and new ones
 *   are reset on accept for `downMs`: what clients see when Postgres is
 *   stopped with `-m immediate` just as that statement goes out, and started
 *   again.
 * - `resume()`: new connections work again. A connection that lived through
 *   the partition stays silent for good (its held bytes are dropped): what a
 *   client sees for minutes after a real heal while TCP retransmits with
 *   exponential backoff, and forever behind a NAT that forgot it. A client
 *   must replace such a connection to be served again.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket | null;
  /** Lived through a partition: never forwards again. */
  dead: boolean;
  /** During a replies-only partition: client bytes still go up, nothing comes back. */
  repliesLost: boolean;
  /** The last bytes the client sent, so a marker split over two packets is still seen. */
  tail: Buffer;
}

export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<Pair>();
  #paused: false | 'both' | 'replies' = false;
  #trip: { marker: Buffer; downMs: number; tripped: () => void } | null = null;
  #downUntil = 0;
  /** Connections accepted so far (for tests that count reconnects). */
  accepted = 0;
  port = 0;

  private constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => this.#accept(client, target));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    const server = proxy.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (typeof addr !== 'object' || !addr) throw new Error('proxy has no address');
    proxy.port = addr.port;
    return proxy;
  }

  /** A Postgres URL with host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get paused(): boolean {
    return this.#paused !== false;
  }

  pause(what: 'both' | 'replies' = 'both'): void {
    this.#paused = what;
    for (const p of this.#pairs) {
      if (what === 'both') p.dead = true;
      else p.repliesLost = true;
    }
  }

  /** Resolves when the marker was seen and the "restart" began. */
  restartOn(marker: string, downMs: number): Promise<void> {
    return new Promise((tripped) => {
      this.#trip = { marker: Buffer.from(marker), downMs, tripped };
    });
  }

  #restart(): void {
    const trip = this.#trip!;
    this.#trip = null;
    this.#downUntil = performance.now() + trip.downMs;
    for (const p of this.#pairs) {
      p.client.resetAndDestroy();
      p.upstream?.destroy();
    }
    this.#pairs.clear();
    trip.tripped();
  }

  resume(): void {
    this.#paused = false;
    for (const p of this.#pairs) if (p.repliesLost) p.dead = true;
  }

  async close(): Promise<void> {
    for (const p of this.#pairs) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    this.#pairs.clear();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  #accept(client: Socket, target: { host: string; port: number }): void {
    this.accepted++;
    if (performance.now() < this.#downUntil) {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = {
      client,
      upstream: null,
      dead: this.#paused === 'both',
      repliesLost: this.#paused === 'replies',
      tail: Buffer.alloc(0),
    };
    this.#pairs.add(pair);
    client.on('error', () => {});
    const forget = () => {
      this.#pairs.delete(pair);
      client.destroy();
      pair.upstream?.destroy();
    };
    if (pair.dead) {
      // Accepted, never connected on: bytes vanish.
      client.on('data', () => {});
      return;
    }
    const upstream = connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('error', () => {});
    client.on('data', (b: Buffer) => {
      if (this.#trip) {
        const seen = Buffer.concat([pair.tail, b]);
        if (seen.includes(this.#trip.marker)) return this.#restart();
        pair.tail = seen.subarray(Math.max(0, seen.length - this.#trip.marker.length + 1));
      }
      if (!pair.dead) upstream.write(b);
    });
    upstream.on('data', (b) => {
      if (!pair.dead && !pair.repliesLost) client.write(b);
    });
    // A close crosses only a live path; a dead one swallows it, as a partition
    // does (the server's side stays open until close()).
    client.on('close', () => {
      if (!pair.dead) forget();
    });
    upstream.on('close', () => {
      if (!pair.dead && !pair.repliesLost) forget();
    });
  }
}
