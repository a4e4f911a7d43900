import type { FastifyHttpOptions, FastifyInstance } from 'fastify';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { HttpLimits } from '../config/load-config.ts';
import { formatSize } from '../core/sizes.ts';
import { ErrorCode } from '../util/errors.ts';

/** The JSON bodies the API takes (cancel, retry) are a few bytes; uploads are multipart, bounded by upload_max_bytes instead. */
const JSON_BODY_LIMIT = 64 * 1024;
/** A connection over max_connections_per_client that sends no request is closed this soon. */
const OVER_LIMIT_GRACE_MS = 2000;

const seconds = (ms: number) => `${ms / 1000} s`;

/** An error answer written straight to the socket, for when no reply object can send it, then the connection closed. */
function refuse(socket: Socket, statusCode: number, code: ErrorCode, message: string): void {
  const body = JSON.stringify({ statusCode, code, error: STATUS_CODES[statusCode], message });
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  socket.destroy();
}

/** The server, not the client, is behind: the body it has not read yet waits in its buffers (disk writes, package checks). */
const serverBehind = (req: IncomingMessage) => req.readableFlowing === false || req.readableLength > 0;
const hasBody = (req: IncomingMessage) =>
  Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;

/**
 * Calls `tooSlow` when a request body arrives slower than `minRate` bytes/s, averaged over the last
 * `windowMs`. Time the server spends not reading starts the window again: only the client's pace counts.
 */
function watchBodyRate(
  req: IncomingMessage,
  res: ServerResponse,
  minRate: number,
  windowMs: number,
  tooSlow: () => void,
): void {
  const socket = req.socket;
  const sample = () => ({ at: Date.now(), bytes: socket.bytesRead });
  let samples = [sample()];
  const timer = setInterval(
    () => {
      if (req.complete || res.headersSent || socket.destroyed) return clearInterval(timer);
      const now = sample();
      if (serverBehind(req)) return void (samples = [now]);
      samples.push(now);
      // The oldest sample kept is the newest one at least a window old.
      while (samples.length > 2 && now.at - samples[1]!.at >= windowMs) samples.shift();
      const first = samples[0]!;
      const elapsed = now.at - first.at;
      if (elapsed >= windowMs && now.bytes - first.bytes < (minRate * elapsed) / 1000) {
        clearInterval(timer);
        tooSlow();
      }
    },
    Math.max(10, Math.round(windowMs / 10)),
  );
  timer.unref();
  res.once('close', () => clearInterval(timer));
}

/**
 * What one client may hold of the web server: Node's timeouts for the headers, the whole request and
 * keep-alive; an idle timeout that counts only the client's silence; a minimum rate for request bodies;
 * and connections per client address. Every refusal is an answer the client can read (408, 429) while
 * HTTP still allows one. Closing the connection ends the request, so an upload handler's streams fail
 * and it removes its half-written directory at once.
 */
export function httpLimiter(limits: HttpLimits): {
  options: FastifyHttpOptions<Server>;
  attach: (app: FastifyInstance) => void;
} {
  // The request each connection is serving, so connection-level events know whether an answer may still be written.
  const serving = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();
  const overLimit = new WeakSet<Socket>();
  const timedOut = (socket: Socket, message: string) => refuse(socket, 408, ErrorCode.timeout, message);
  const tooMany = (socket: Socket) =>
    `This address (${socket.remoteAddress}) has ${limits.maxConnectionsPerClient} connections open to the server already (max_connections_per_client); close some and try again`;

  const headersTimeout =
    limits.requestTimeoutMs > 0 ? Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) : limits.headersTimeoutMs;
  const options: FastifyHttpOptions<Server> = {
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    bodyLimit: JSON_BODY_LIMIT,
    // Node checks the headers and request timeouts every connectionsCheckingInterval (30 s unless told):
    // a quarter of the shorter keeps each within a quarter of what it says.
    http: {
      headersTimeout,
      connectionsCheckingInterval: Math.min(
        30_000,
        Math.max(50, Math.round(Math.min(headersTimeout, limits.requestTimeoutMs || Infinity) / 4)),
      ),
    },
    clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      // An answer already on its way cannot be followed by another.
      if (serving.get(socket)?.res.headersSent) return void socket.destroy();
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        // With a request being served its headers arrived: the whole request was too slow.
        const message = serving.has(socket)
          ? `The request did not arrive within ${seconds(limits.requestTimeoutMs)} (request_timeout); the server closed the connection`
          : `The request's headers did not arrive within ${seconds(headersTimeout)} (headers_timeout); the server closed the connection`;
        return timedOut(socket, message);
      }
      if (err.code === 'HPE_HEADER_OVERFLOW')
        return refuse(socket, 431, ErrorCode.tooLarge, 'The request headers are too large');
      refuse(socket, 400, ErrorCode.usage, 'The request is not valid HTTP');
    },
  };

  function attach(app: FastifyInstance): void {
    const open = new Map<string, number>();
    app.server.on('connection', (socket: Socket) => {
      const client = socket.remoteAddress;
      if (limits.maxConnectionsPerClient <= 0 || !client) return;
      const count = (open.get(client) ?? 0) + 1;
      open.set(client, count);
      socket.once('close', () => {
        const left = open.get(client)! - 1;
        if (left > 0) open.set(client, left);
        else open.delete(client);
      });
      if (count > limits.maxConnectionsPerClient) {
        overLimit.add(socket);
        socket.setTimeout(OVER_LIMIT_GRACE_MS);
      }
    });
    // Node's idle and keep-alive timeouts: with this listener Node leaves the closing to us.
    app.server.on('timeout', (socket: Socket) => {
      if (overLimit.has(socket)) return refuse(socket, 429, ErrorCode.tooManyConnections, tooMany(socket));
      const current = serving.get(socket);
      // Between requests (keep-alive), or with an answer on its way, there is nothing to say.
      if (!current || current.res.headersSent) return void socket.destroy();
      // While the server works on a request (reads the database, writes an upload out) the client is not idle.
      if (current.req.complete || serverBehind(current.req)) return void socket.setTimeout(limits.idleTimeoutMs);
      timedOut(
        socket,
        `Nothing arrived for ${seconds(limits.idleTimeoutMs)} (idle_timeout); the server closed the connection`,
      );
    });
    app.addHook('onRequest', async (req, reply) => {
      const socket = req.raw.socket;
      if (overLimit.has(socket))
        return reply
          .code(429)
          .header('connection', 'close')
          .send({
            statusCode: 429,
            code: ErrorCode.tooManyConnections,
            error: STATUS_CODES[429],
            message: tooMany(socket),
          });
      serving.set(socket, { req: req.raw, res: reply.raw });
      reply.raw.once('close', () => serving.get(socket)?.res === reply.raw && serving.delete(socket));
      // inject() has no real socket to measure.
      if (limits.uploadMinRate > 0 && hasBody(req.raw) && socket instanceof Socket) {
        watchBodyRate(req.raw, reply.raw, limits.uploadMinRate, limits.uploadRateWindowMs, () =>
          timedOut(
            socket,
            `The request body arrived slower than ${formatSize(limits.uploadMinRate)}/s over ${seconds(limits.uploadRateWindowMs)} (upload_min_rate, upload_rate_window); the server stopped it`,
          ),
        );
      }
      return undefined;
    });
  }

  return { options, attach };
}
