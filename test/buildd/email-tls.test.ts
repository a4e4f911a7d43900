import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EmailReport } from '../../src/buildd/commands/email.ts';
import type { AttemptRun } from '../../src/buildd/phases.ts';
import { startSmtp } from '../helpers/smtp.ts';

/** What a report needs of an attempt: its claim, record and manifest. */
const attempt = {
  claim: { jobId: 'tls', platform: 'el9', arch: 'x86_64', attempt: 1, builderName: 'b1' },
  info: { phases: ['init', 'build', 'end'], products: [], failures: [], hostname: 'h' },
  manifest: { report: ['user@example.org'], bucket: 'devel', submitter: null, subtime: null },
  attemptDir: '/results/tls/el9-x86_64/attempt-1',
} as unknown as AttemptRun;

describe('e-mail reports over STARTTLS', () => {
  it("check the server's certificate by default, and send to a self-signed relay only when told to", async () => {
    const smtp = await startSmtp({ starttls: true });
    try {
      await assert.rejects(
        new EmailReport({ host: '127.0.0.1', port: smtp.port }).report(attempt, { status: 'success', reason: null }),
        /certificate/i,
      ); // smtp-server's own: self-signed, and by now expired
      assert.equal(smtp.mails.length, 0);
      await new EmailReport({ host: '127.0.0.1', port: smtp.port, verify_certificate: false }).report(attempt, {
        status: 'success',
        reason: null,
      });
      await smtp.waitFor(1);
      assert.equal(smtp.mails[0]!.header('X-PkgForge-ID'), 'tls');
    } finally {
      await smtp.close();
    }
  });
});
