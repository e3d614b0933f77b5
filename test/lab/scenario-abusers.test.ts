/**
 * The abuse scenario's raw-socket clients against small local servers: the
 * hostile requests carry exactly the bytes they claim to (a parser that
 * refuses them must be refusing what the scenario says), trickling bodies
 * never complete however long the server waits, answers are counted by
 * status, and nothing but loopback is ever a target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import {
  HOSTILE_CASES,
  hostileRequest,
  hostileRequests,
  trickleBodies,
} from '../../src/lab/scenario/faults/abusers.js';

/** A TCP server that hands every connection to `onConn`; resolves with its URL. */
async function tcpServer(onConn: (s: Socket) => void): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (typeof addr !== 'object' || !addr) throw new Error('no address');
  return { url: `http://127.0.0.1:${addr.port}`, server, sockets };
}

async function close(s: { server: Server; sockets: Set<Socket> }): Promise<void> {
  for (const c of s.sockets) c.destroy();
  await new Promise<void>((r) => s.server.close(() => r()));
}

function split(bytes: Buffer): { head: string; body: Buffer } {
  const at = bytes.indexOf('\r\n\r\n');
  return { head: bytes.subarray(0, at).toString('latin1'), body: bytes.subarray(at + 4) };
}

test('hostile requests carry what their case names, with a Content-Length that matches the body', () => {
  for (const c of HOSTILE_CASES) {
    const { bytes, keys } = hostileRequest(c, 7, 'k', '127.0.0.1:1', 1000);
    const { head, body } = split(bytes);
    const len = Number(/\r\nContent-Length: (\d+)/.exec(head)?.[1]);
    assert.equal(len, body.length, `${c}: Content-Length`);
    const idKeys = head.split('\r\n').filter((l) => l.toLowerCase().startsWith('idempotency-key:'));
    switch (c) {
      case 'repeated-key':
        assert.equal(idKeys.length, 2);
        assert.notEqual(idKeys[0], idKeys[1]);
        assert.deepEqual(keys, ['k-repeated-key-7-a', 'k-repeated-key-7-b']);
        assert.doesNotThrow(() => JSON.parse(body.toString('utf8')));
        break;
      case 'non-ascii-key':
        assert.equal(idKeys.length, 1);
        assert.ok(
          [...Buffer.from(idKeys[0]!, 'latin1')].some((b) => b > 0x7e),
          'a byte outside visible ASCII',
        );
        assert.deepEqual(keys, []);
        break;
      case 'non-utf8-body':
        assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(body), 'the body is not valid UTF-8');
        assert.deepEqual(keys, ['k-non-utf8-body-7']);
        break;
      case 'huge-header':
        assert.ok(head.length > 64 * 1024, `header section ${head.length} bytes`);
        assert.deepEqual(keys, ['k-huge-header-7']);
        break;
    }
  }
});

test('hostile requests: one connection each at the given rate, answers counted per case and status', async () => {
  let seen = 0;
  const srv = await tcpServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const at = buf.indexOf('\r\n\r\n');
      if (at < 0) return;
      seen++;
      // Refuse a huge header section the way a strict server does; answer the rest.
      const status =
        at > 16 * 1024 ? 431 : buf.subarray(0, at).toString('latin1').split('Idempotency-Key:').length > 2 ? 400 : 201;
      s.end(`HTTP/1.1 ${status} X\r\nContent-Length: 0\r\n\r\n`);
    });
  });
  try {
    const r = await hostileRequests({
      url: srv.url,
      rate: 40,
      seconds: 0.5,
      keyPrefix: 'h',
      deadlineMs: 1000,
      answerTimeoutMs: 2000,
    });
    assert.equal(seen, 20);
    assert.deepEqual(r.statuses, {
      'repeated-key 400': 5,
      'non-ascii-key 201': 5,
      'non-utf8-body 201': 5,
      'huge-header 431': 5,
    });
    assert.equal(r.keys.length, 5 * 2 + 5 + 5);
  } finally {
    await close(srv);
  }
});

test('trickling bodies never complete: a server waiting for the body holds every connection open until the time is up', async () => {
  const received = new Map<Socket, number>();
  const srv = await tcpServer((s) => {
    received.set(s, 0);
    s.on('data', (d: Buffer) => received.set(s, received.get(s)! + d.length));
  });
  try {
    const started = Date.now();
    const r = await trickleBodies({
      url: srv.url,
      connections: 20,
      seconds: 1.2,
      byteEveryMs: 200,
      keyPrefix: 't',
      deadlineMs: 1000,
    });
    const took = Date.now() - started;
    assert.deepEqual(r.statuses, { open: 20 });
    assert.ok(took >= 1100 && took < 5000, `bounded by its time (${took} ms)`);
    // Headers, 10 body bytes, then a few drips; never the whole body.
    for (const [, n] of received) assert.ok(n > 0);
    assert.equal(r.keys.length, 20);
  } finally {
    await close(srv);
  }
});

test('trickling bodies count a server that answers them (a 408, say) and one that hangs up', async () => {
  let i = 0;
  const srv = await tcpServer((s) => {
    if (i++ % 2 === 0) setTimeout(() => s.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n'), 300);
    else setTimeout(() => s.destroy(), 300);
  });
  try {
    const r = await trickleBodies({
      url: srv.url,
      connections: 10,
      seconds: 3,
      byteEveryMs: 500,
      keyPrefix: 't',
      deadlineMs: 1000,
    });
    assert.equal(
      (r.statuses['408'] ?? 0) + (r.statuses.closed ?? 0) + (r.statuses.error ?? 0),
      10,
      JSON.stringify(r.statuses),
    );
    assert.equal(r.statuses['408'], 5);
    assert.equal(r.answeredMs.length, 5);
  } finally {
    await close(srv);
  }
});

test('abusive clients refuse any target but loopback', async () => {
  await assert.rejects(
    trickleBodies({
      url: 'http://10.1.2.3:80',
      connections: 1,
      seconds: 1,
      byteEveryMs: 100,
      keyPrefix: 't',
      deadlineMs: 1000,
    }),
    /only target loopback/,
  );
  await assert.rejects(
    hostileRequests({ url: 'http://example.com:80', rate: 1, seconds: 1, keyPrefix: 'h', deadlineMs: 1000 }),
    /only target loopback/,
  );
});
