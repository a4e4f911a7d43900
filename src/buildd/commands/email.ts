import { hostname } from 'node:os';
import { basename } from 'node:path';
import nodemailer from 'nodemailer';
import type { AttemptRun, ReportCommand, TaskOutcome } from '../phases.ts';

export interface EmailParams {
  host?: string;
  port?: number;
  from?: string;
  /** Use TLS from the start (port 465); otherwise STARTTLS is used when the server offers it. */
  secure?: boolean;
  /** Check the server's TLS certificate (default true); false accepts any, for a relay with a self-signed one. */
  verify_certificate?: boolean;
}

/** One message per task to the job's report addresses, success or failure. */
export class EmailReport implements ReportCommand {
  readonly name = 'email';
  readonly tools = [];
  constructor(private readonly params: EmailParams) {}

  async report(task: AttemptRun, outcome: TaskOutcome): Promise<void> {
    const to = task.manifest.report;
    if (to.length === 0) return;
    const transport = nodemailer.createTransport({
      host: this.params.host ?? 'localhost',
      port: this.params.port ?? 25,
      secure: this.params.secure ?? false,
      tls: { rejectUnauthorized: this.params.verify_certificate !== false },
    });
    const { claim } = task;
    const word = outcome.status === 'success' ? 'OK' : outcome.status === 'cancelled' ? 'CANCELLED' : 'FAIL';
    await transport.sendMail({
      from: this.params.from ?? `pkgforge@${hostname()}`,
      to: to[0],
      ...(to.length > 1 && { cc: to.slice(1) }),
      subject: `PkgForge ${word}: ${claim.platform}/${claim.arch} job ${claim.jobId}`,
      headers: {
        'X-PkgForge-Status': outcome.status,
        'X-PkgForge-Builder': claim.builderName,
        'X-PkgForge-ID': claim.jobId,
        References: `<pkgforge-${claim.jobId}@${hostname()}>`,
      },
      text: reportText(task, outcome),
    });
    transport.close();
  }
}

export function reportText(task: AttemptRun, outcome: TaskOutcome): string {
  const { claim, info, manifest } = task;
  const lines: string[] = [];
  if (outcome.status === 'success')
    lines.push(`Your job ${claim.jobId} was built and published for ${claim.platform}/${claim.arch}.`);
  else if (outcome.status === 'cancelled')
    lines.push(`Your job ${claim.jobId} was cancelled on ${claim.platform}/${claim.arch}.`);
  else
    lines.push(
      `Your job ${claim.jobId} failed on ${claim.platform}/${claim.arch}.`,
      '',
      `Why: ${outcome.reason ?? 'unknown'}`,
      `It stopped in the '${info.phases.at(-1) ?? 'init'}' phase.`,
    );
  const products = info.products.map((p) => basename(p));
  if (products.length > 0) lines.push('', 'Packages built:', ...products.map((p) => `  ${p}`));
  if (info.failures.length > 0) lines.push('', 'Packages that failed to build:', ...info.failures.map((p) => `  ${p}`));
  lines.push(
    '',
    `Bucket:     ${manifest.bucket}`,
    `Builder:    ${claim.builderName} on ${info.hostname}, attempt ${claim.attempt}`,
    `Submitter:  ${manifest.submitter ?? 'unknown'}`,
    `Submitted:  ${manifest.subtime ? new Date(manifest.subtime * 1000).toISOString() : 'unknown'}`,
    `Logs:       ${task.attemptDir}`,
    '',
    '--',
    'You receive this because your address was given as a report address when the job was submitted.',
  );
  return `${lines.join('\n')}\n`;
}
