import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  header(name: string): string | undefined;
}

/** A real SMTP server on loopback that keeps what it receives; with `starttls`, one that offers TLS with a self-signed certificate. */
export async function startSmtp(
  options: { starttls?: boolean } = {},
): Promise<{ port: number; mails: ReceivedMail[]; waitFor: (n: number) => Promise<void>; close: () => Promise<void> }> {
  const mails: ReceivedMail[] = [];
  const waiters: (() => void)[] = [];
  const server = new SMTPServer({
    authOptional: true,
    // With STARTTLS, smtp-server offers its own self-signed certificate.
    disabledCommands: options.starttls ? [] : ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const head = raw.split(/\r?\n\r?\n/)[0] ?? '';
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          header: (name) => head.match(new RegExp(`^${name}:\\s*(.*)$`, 'mi'))?.[1]?.trim(),
        });
        waiters.splice(0).forEach((w) => w());
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    mails,
    waitFor: async (n) => {
      while (mails.length < n) await new Promise<void>((r) => waiters.push(r));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
