/**
 * requestText, the one request path under both downstream clients: an
 * answer's status and whole body, or why there is none, within one deadline
 * that covers waiting for a connection too, and a body that cannot fill the
 * worker's memory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { Pool } from 'undici';
import { MAX_ANSWER_BYTES, requestText, startExchange } from '../../src/downstream/pool.js';

describe('requestText over the wire', () => {
  let server: Server;
  let base = '';
  let answer: (req: IncomingMessage, res: ServerResponse) => void = () => {};
  const seen: string[] = [];
  let connections = 0;
  before(async () => {
    server = createServer((req, res) => {
      seen.push(req.url ?? '');
      req.resume();
      req.on('end', () => answer(req, res));
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const pool = (connections: number) => new Pool(base, { connections, headersTimeout: 30_000, bodyTimeout: 30_000 });

  it('a body in many packets is read whole, a character split between two of them included; a leading byte-order mark is dropped, as body.text() does', async () => {
    const p = pool(2);
    try {
      const text = '{"id":"pch_1","status":"succeeded","note":"é€"}';
      const bytes = Buffer.from(text);
      const euro = bytes.indexOf(Buffer.from('€'));
      // Cuts inside "succeeded" and between the second and third byte of "€".
      const parts = [bytes.subarray(0, 28), bytes.subarray(28, euro + 2), bytes.subarray(euro + 2)];
      answer = (_req, res) => {
        res.writeHead(201, { 'content-type': 'application/json' });
        const write = (i: number) => {
          if (i === parts.length) return res.end();
          res.write(parts[i]);
          setTimeout(() => write(i + 1), 20);
        };
        write(0);
      };
      assert.deepEqual(await requestText(p, { method: 'POST', path: '/a', body: '{}' }, 2000), {
        statusCode: 201,
        text,
      });
      answer = (_req, res) => {
        res.writeHead(200);
        res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"ok":true}')]));
      };
      assert.deepEqual(await requestText(p, { method: 'GET', path: '/b' }, 2000), {
        statusCode: 200,
        text: '{"ok":true}',
      });
      answer = (_req, res) => {
        res.writeHead(204);
        res.end();
      };
      assert.deepEqual(await requestText(p, { method: 'GET', path: '/c' }, 2000), { statusCode: 204, text: '' });
    } finally {
      await p.close();
    }
  });

  it('an informational 103 before the answer is skipped: the final status and body are what count', async () => {
    const p = pool(1);
    try {
      answer = (_req, res) => {
        res.writeEarlyHints({ link: '</x>; rel=preload' });
        res.writeHead(402, { 'content-type': 'application/json' });
        res.end('{"id":"pch_2","status":"declined"}');
      };
      assert.deepEqual(await requestText(p, { method: 'POST', path: '/d', body: '{}' }, 2000), {
        statusCode: 402,
        text: '{"id":"pch_2","status":"declined"}',
      });
    } finally {
      await p.close();
    }
  });

  it('an answer larger than MAX_ANSWER_BYTES ends as bad_response, by the bytes that arrive (chunked or with a length), and the pool serves the next', async () => {
    const p = pool(1);
    try {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let written = 0;
      answer = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' }); // chunked, no length
        const more = () => {
          // Far past the cap if nothing stops it; stops once the client is gone.
          while (written < 64 * MAX_ANSWER_BYTES && !res.destroyed) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
      };
      const t0 = performance.now();
      assert.deepEqual(await requestText(p, { method: 'GET', path: '/big' }, 10_000), { failed: 'bad_response' });
      assert.ok(performance.now() - t0 < 5000, 'ended at the cap, not at the deadline');
      const declared = Buffer.alloc(MAX_ANSWER_BYTES + 1, 0x62);
      answer = (_req, res) => {
        res.writeHead(200, { 'content-length': String(declared.length) });
        res.end(declared);
      };
      assert.deepEqual(await requestText(p, { method: 'GET', path: '/big2' }, 10_000), { failed: 'bad_response' });
      const exact = Buffer.alloc(MAX_ANSWER_BYTES, 0x63);
      answer = (_req, res) => {
        res.writeHead(200, { 'content-length': String(exact.length) });
        res.end(exact);
      };
      const ok = await requestText(p, { method: 'GET', path: '/exact' }, 10_000);
      assert.ok('text' in ok && ok.text.length === MAX_ANSWER_BYTES, 'an answer of exactly the cap is read');
    } finally {
      await p.close();
    }
  });

  it('the deadline covers the wait for a connection: a queued request answers timeout on time, is never sent, and leaves the connection open', async () => {
    const p = pool(1);
    try {
      let release: () => void = () => {};
      answer = (req, res) => {
        if (req.url === '/hold')
          release = () => {
            res.writeHead(200);
            res.end('held');
          };
        else {
          res.writeHead(200);
          res.end('late');
        }
      };
      seen.length = 0;
      connections = 0;
      const held = requestText(p, { method: 'GET', path: '/hold' }, 5000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const t0 = performance.now();
      assert.deepEqual(await requestText(p, { method: 'POST', path: '/queued', body: '{}' }, 60), {
        failed: 'timeout',
      });
      const waited = performance.now() - t0;
      assert.ok(waited < 1000, `answered by its own deadline while the only connection was busy (${waited} ms)`);
      release();
      assert.deepEqual(await held, { statusCode: 200, text: 'held' });
      // The connection is free again: a request after it is served, and the
      // timed-out one was never sent.
      assert.deepEqual(await requestText(p, { method: 'GET', path: '/after' }, 2000), {
        statusCode: 200,
        text: 'late',
      });
      assert.deepEqual(seen, ['/hold', '/after']);
      // Dropping the timed-out request did not cost the connection: a
      // client whose queue expires under a slow server would otherwise
      // connect and close once per expired request (measured in the lab's
      // generator: most of its CPU against a collapsing service).
      assert.equal(connections, 1, 'one connection served all three');
    } finally {
      await p.close();
    }
  });

  it('a queue of expired requests behind a busy connection, timed out or given up, is dropped without a send or a new connection, round after round', async () => {
    // The case that cost the load generator most of its CPU: every request
    // queued behind a slow answer expires, and each one, when the
    // connection reached it, used to destroy the connection and so force a
    // new connect for the next. Five rounds of 20 (half by their own
    // deadline, half given up by the caller), then live requests.
    const p = pool(1);
    try {
      const releases: (() => void)[] = [];
      answer = (req, res) => {
        const send = () => {
          res.writeHead(200);
          res.end(req.url ?? '');
        };
        if (req.url?.startsWith('/hold')) releases.push(send);
        else send();
      };
      seen.length = 0;
      connections = 0;
      for (let round = 0; round < 5; round++) {
        const held = requestText(p, { method: 'GET', path: `/hold-${round}` }, 5000);
        await new Promise((resolve) => setTimeout(resolve, 20));
        const timedOut = Array.from({ length: 10 }, (_, i) =>
          requestText(p, { method: 'POST', path: `/expired-${round}-${i}`, body: '{}' }, 5 + i),
        );
        const givenUp = Array.from({ length: 10 }, (_, i) =>
          startExchange(p, { method: 'POST', path: `/given-up-${round}-${i}`, body: '{}' }, 5000),
        );
        for (const e of givenUp) e.giveUp();
        for (const a of await Promise.all(timedOut)) assert.deepEqual(a, { failed: 'timeout' });
        for (const e of givenUp) assert.deepEqual(await e.answer, { failed: 'timeout' });
        releases.shift()!();
        assert.deepEqual(await held, { statusCode: 200, text: `/hold-${round}` });
        assert.deepEqual(await requestText(p, { method: 'GET', path: `/after-${round}` }, 2000), {
          statusCode: 200,
          text: `/after-${round}`,
        });
      }
      assert.deepEqual(
        seen,
        [0, 1, 2, 3, 4].flatMap((r) => [`/hold-${r}`, `/after-${r}`]),
        'no expired or given-up request was sent',
      );
      assert.equal(connections, 1, 'one connection served every round');
    } finally {
      await p.close();
    }
  });

  it('a success body cut short at any byte (chunked without its last chunk, or short of its length; by FIN or by reset) is a connection failure, never a shorter answer', async () => {
    // A prefix of a success that parsed as one would be charged as final, so
    // every cut point is tried, both framings, both ways a connection ends.
    const p = pool(2);
    const full = Buffer.from('{"id":"pch_4","object":"charge","status":"succeeded","amount":500}');
    try {
      for (let cut = 0; cut < full.length; cut++)
        for (const framing of ['chunked', 'length'] as const) {
          const reset = cut % 2 === 1;
          answer = (_req, res) => {
            res.writeHead(
              201,
              framing === 'length'
                ? { 'content-type': 'application/json', 'content-length': String(full.length) }
                : { 'content-type': 'application/json' },
            );
            if (cut > 0) res.write(full.subarray(0, cut));
            setTimeout(() => {
              const socket = res.socket as Socket;
              if (reset) socket.resetAndDestroy();
              else socket.end();
            }, 2);
          };
          assert.deepEqual(
            await requestText(p, { method: 'POST', path: `/cut-${framing}-${cut}`, body: '{}' }, 2000),
            { failed: 'connection' },
            `${framing}, cut after ${cut} of ${full.length} bytes, ${reset ? 'reset' : 'FIN'}`,
          );
        }
    } finally {
      await p.destroy();
    }
  });

  it('a closed pool answers connection at once', async () => {
    const p = pool(1);
    await p.close();
    assert.deepEqual(await requestText(p, { method: 'GET', path: '/' }, 2000), { failed: 'connection' });
  });

  it('a refused connection and a reset mid-body are connection failures; a silent server is a timeout', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = new Pool(`http://127.0.0.1:${port}`, { connections: 1, connectTimeout: 1000 });
    const p = pool(2);
    try {
      assert.deepEqual(await requestText(refused, { method: 'GET', path: '/' }, 2000), { failed: 'connection' });
      answer = (_req, res) => {
        res.writeHead(201, { 'content-length': '100' });
        res.write('{"id":"pch_');
        setTimeout(() => (res.socket as Socket).destroy(), 10);
      };
      assert.deepEqual(await requestText(p, { method: 'POST', path: '/reset', body: '{}' }, 2000), {
        failed: 'connection',
      });
      answer = () => {};
      assert.deepEqual(await requestText(p, { method: 'POST', path: '/silent', body: '{}' }, 50), {
        failed: 'timeout',
      });
    } finally {
      await refused.close();
      await p.destroy();
    }
  });
});
