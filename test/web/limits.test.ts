import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { HttpLimits } from '../../src/config/load-config.ts';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { builderIdentity, claimNextTask } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { insertJob } from '../../src/registry/jobs.ts';
import { registerTasks } from '../../src/registry/tasks.ts';
import { createToken } from '../../src/registry/tokens.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { srpm } from '../helpers/srpm.ts';
import { farmApp } from '../helpers/web.ts';

/** Rejects when `promise` has not settled within `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every 20 ms until it holds, for at most `ms`. */
async function until(what: string, condition: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

/** A raw client connection: what it received, and a promise of its closing. */
async function rawClient(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (d) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, received: () => text, closed };
}

/** The JSON error body of a raw HTTP response. */
const errorOf = (response: string) =>
  JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { statusCode: number; code: string; message: string };

describe('the web server limits', () => {
  let farm: TestFarm;
  let token: string;
  const servers: FastifyInstance[] = [];
  before(async () => {
    farm = await makeFarm('sqlite');
    await addPlatforms(farm, 'el9/x86_64*');
    token = (await createToken(farm.registry.db, 'alice')).token;
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await farm.dispose();
  });

  async function serve(limits: Partial<HttpLimits>): Promise<{ app: FastifyInstance; port: number; base: string }> {
    const app = await farmApp(farm, { limits });
    servers.push(app);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    return { app, port: (app.server.address() as AddressInfo).port, base };
  }

  /** An upload's request head and its whole multipart body, to be sent in pieces. */
  function upload(file: string): { head: string; body: Buffer } {
    const b = 'pkgforge-test-boundary';
    const body = Buffer.concat([
      Buffer.from(
        `--${b}\r\nContent-Disposition: form-data; name="bucket"\r\n\r\ndevel\r\n--${b}\r\nContent-Disposition: form-data; name="file"; filename="${file.split('/').pop()}"\r\n\r\n`,
      ),
      readFileSync(file),
      Buffer.from(`\r\n--${b}--\r\n`),
    ]);
    const head = `POST /api/v1/jobs HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${token}\r\nContent-Type: multipart/form-data; boundary=${b}\r\nContent-Length: ${body.length}\r\n\r\n`;
    return { head, body };
  }
  const partials = () => readdirSync(farm.incoming).filter((n) => n.includes('.partial-'));

  /** Sends the head and the start of an upload's body, and waits for its half-written directory. */
  async function startUpload(port: number) {
    const client = await rawClient(port);
    const { head, body } = upload(srpm('hello'));
    client.socket.write(head);
    client.socket.write(body.subarray(0, 1000));
    await until('the partial upload directory appears', () => partials().length === 1);
    return { ...client, rest: body.subarray(1000) };
  }

  /** Waits for the server to close the connection, answering 408 with a message matching `reason`, and for the upload's directory to go. */
  async function assertTimedOut(client: { received: () => string; closed: Promise<void> }, reason: RegExp) {
    await within(5000, 'the server closes the connection', client.closed);
    assert.match(client.received(), /^HTTP\/1\.1 408 /);
    const error = errorOf(client.received());
    assert.equal(error.code, 'PKGF_ERR_TIMEOUT');
    assert.match(error.message, reason);
    await until('the partial upload directory is removed', () => partials().length === 0, 2000);
  }

  it('answers 408 and removes the half-written upload when the body stalls below upload_min_rate', async () => {
    const { port } = await serve({
      uploadMinRate: 4096,
      uploadRateWindowMs: 500,
      idleTimeoutMs: 60_000,
      requestTimeoutMs: 0,
    });
    const client = await startUpload(port);
    await assertTimedOut(client, /slower than 4 KiB\/s over 0\.5 s \(upload_min_rate, upload_rate_window\)/);
  });

  it('lets a slow but steady upload finish, taking longer than several rate windows', async () => {
    const { port } = await serve({ uploadMinRate: 4096, uploadRateWindowMs: 250 });
    // A 200 KB package sent at 128 KiB/s: 32 times the minimum, for about 1.5 s.
    const { head, body } = upload(srpm('steady', { description: 'steady upload '.repeat(15_000) }));
    const client = await rawClient(port);
    client.socket.write(head);
    const started = Date.now();
    for (let sent = 0; sent < body.length; sent += 6554) {
      client.socket.write(body.subarray(sent, sent + 6554));
      await sleep(50);
    }
    await until('the answer arrives', () => /\r\n\r\n\{.*\}$/s.test(client.received()), 10_000);
    assert.ok(Date.now() - started > 1000, 'the upload took longer than four windows');
    assert.match(client.received(), /^HTTP\/1\.1 201 /, client.received());
    client.socket.destroy();
  });

  it('answers 408 and removes the half-written upload when a connection mid-request is silent for idle_timeout', async () => {
    const { port } = await serve({ idleTimeoutMs: 400, uploadMinRate: 0, requestTimeoutMs: 0 });
    const client = await startUpload(port);
    await assertTimedOut(client, /Nothing arrived for 0\.4 s \(idle_timeout\)/);
  });

  it('answers 408 and removes the half-written upload when the whole request takes longer than request_timeout', async () => {
    const { port } = await serve({
      requestTimeoutMs: 800,
      headersTimeoutMs: 300,
      uploadMinRate: 0,
      idleTimeoutMs: 60_000,
    });
    const client = await startUpload(port);
    // Never silent, never finished: a few bytes every 50 ms.
    let offset = 0;
    const trickle = setInterval(() => client.socket.write(client.rest.subarray(offset, (offset += 10))), 50);
    try {
      await assertTimedOut(client, /did not arrive within 0\.8 s \(request_timeout\)/);
    } finally {
      clearInterval(trickle);
    }
  });

  it('removes the half-written upload as soon as the client closes mid-body', async () => {
    const { port } = await serve({});
    const client = await startUpload(port);
    client.socket.destroy();
    await until('the partial upload directory is removed', () => partials().length === 0, 2000);
  });

  it('answers 408 when the headers do not arrive within headers_timeout', async () => {
    const { port } = await serve({ headersTimeoutMs: 300 });
    const client = await rawClient(port);
    client.socket.write('GET /api/v1/platforms HTTP/1.1\r\nHost: test\r\n');
    await within(3000, 'the server closes the connection', client.closed);
    assert.match(client.received(), /^HTTP\/1\.1 408 /);
    assert.match(errorOf(client.received()).message, /headers did not arrive within 0\.3 s \(headers_timeout\)/);
  });

  it('closes an idle keep-alive connection after keep_alive_timeout, without an answer', async () => {
    const { port } = await serve({ keepAliveTimeoutMs: 300 });
    const client = await rawClient(port);
    client.socket.write('GET /api/v1/platforms HTTP/1.1\r\nHost: test\r\n\r\n');
    await within(3000, 'the server closes the idle connection', client.closed);
    assert.equal([...client.received().matchAll(/^HTTP\/1\.1 /gm)].length, 1);
    assert.match(client.received(), /^HTTP\/1\.1 200 /);
  });

  it('answers 429 to a connection beyond max_connections_per_client, and serves the address again once one closes', async () => {
    const { app, port, base } = await serve({ maxConnectionsPerClient: 2 });
    const [first, second] = [await rawClient(port), await rawClient(port)];
    // One more that sends nothing is answered and closed soon, not kept until headers_timeout.
    const silent = await rawClient(port);
    await within(4000, 'the server closes the connection over the limit', silent.closed);
    assert.match(silent.received(), /^HTTP\/1\.1 429 /);
    const refused = await fetch(`${base}/api/v1/platforms`);
    assert.equal(refused.status, 429);
    const error = (await refused.json()) as { code: string; message: string };
    assert.equal(error.code, 'PKGF_ERR_TOO_MANY_CONNECTIONS');
    assert.match(error.message, /has 2 connections open .*max_connections_per_client/);
    first.socket.destroy();
    await until(
      'the server counts the closed connection',
      () => new Promise((resolve) => app.server.getConnections((_, n) => resolve(n === 1))),
    );
    assert.equal((await fetch(`${base}/api/v1/platforms`)).status, 200);
    second.socket.destroy();
  });

  it('serves 50 connections from one address with the defaults (the web benchmark uses 50)', async () => {
    const { port } = await serve({});
    const clients = await Promise.all(Array.from({ length: 50 }, () => rawClient(port)));
    for (const c of clients) c.socket.write('GET /api/v1/platforms HTTP/1.1\r\nHost: test\r\n\r\n');
    await until('every connection is answered', () => clients.every((c) => /\r\n\r\n\[.*\]$/s.test(c.received())));
    assert.deepEqual(new Set(clients.map((c) => c.received().slice(0, 12))), new Set(['HTTP/1.1 200']));
    for (const c of clients) c.socket.destroy();
  });

  it('refuses a JSON body over 64 KiB with 413', async () => {
    const { app } = await serve({});
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/jobs/any/cancel',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ platform: 'x'.repeat(100 * 1024) }),
    });
    assert.equal(r.statusCode, 413);
    assert.equal(r.json().code, 'PKGF_ERR_TOO_LARGE');
  });

  it('keeps a quiet live log open past idle_timeout, with comments, and delivers what comes next', async () => {
    await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
    const m = normaliseManifest(
      {
        id: 'quiet',
        bucket: 'devel',
        packages: [{ file: 'a-1-1.src.rpm', type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }],
      },
      'quiet',
    );
    await insertJob(farm.registry, m, { submitter: null, submittedAt: 1, incomingEntry: null });
    await registerTasks(farm.registry, 'quiet', ['auto'], ['all'], 'rpm');
    assert.ok(await claimNextTask(farm.registry, (await builderIdentity(farm.registry.db, 'b1'))!, 'h[1]', 60_000));
    const attemptDir = join(farm.results, 'quiet', 'el9-x86_64', 'attempt-1');
    mkdirSync(attemptDir, { recursive: true });
    writeFileSync(join(attemptDir, 'build.log'), 'configuring\n');

    const { base } = await serve({ idleTimeoutMs: 300 });
    const gone = new AbortController();
    const res = await fetch(`${base}/api/v1/jobs/quiet/tasks/el9/x86_64/log`, { signal: gone.signal });
    const reader = res.body!.getReader();
    let text = '';
    const read = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before ${pattern}: ${text}`);
        text += new TextDecoder().decode(value);
      }
    };
    try {
      await read(/data: configuring/);
      // Four comments at half the idle timeout: the stream outlived idle_timeout twice over.
      await within(5000, 'four comments on a quiet log', read(/(^: .*\n\n[^]*){4}/m));
      appendFileSync(join(attemptDir, 'build.log'), 'compiling\n');
      await within(5000, 'the next log line', read(/data: compiling/));
    } finally {
      gone.abort();
    }
  });
});
