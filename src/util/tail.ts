import { Writable } from 'node:stream';

/**
 * A stream that passes everything on to `target` and keeps the last `maxBytes` of it, so the end
 * of a command's output can be read (its cause of failure) without reading the log file back.
 */
export function keepTail(target: Writable, maxBytes = 16 * 1024): { stream: Writable; tail(): string } {
  let kept = Buffer.alloc(0);
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      kept = Buffer.concat([kept, chunk]);
      if (kept.length > maxBytes) kept = kept.subarray(kept.length - maxBytes);
      if (target.write(chunk)) done();
      else target.once('drain', () => done());
    },
  });
  return { stream, tail: () => kept.toString('utf8') };
}
