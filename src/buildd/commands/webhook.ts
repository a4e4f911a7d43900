import { createHmac } from 'node:crypto';
import { basename } from 'node:path';
import type { AttemptRun, ReportCommand, TaskOutcome } from '../phases.ts';

/**
 * POSTs a JSON report of each finished task to a URL, signed with HMAC-SHA256 of the body in
 * `X-PkgForge-Signature: sha256=<hex>` so the receiver can check it came from this farm.
 */
export class WebhookReport implements ReportCommand {
  readonly name = 'webhook';
  readonly tools = [];
  constructor(private readonly params: { url?: string; secret?: string; timeout?: number }) {
    if (!params.url) throw new Error("the webhook report needs a 'url' parameter");
  }

  async report(task: AttemptRun, outcome: TaskOutcome): Promise<void> {
    const body = JSON.stringify({
      job: task.claim.jobId,
      platform: task.claim.platform,
      arch: task.claim.arch,
      bucket: task.claim.bucket,
      attempt: task.claim.attempt,
      builder: task.claim.builderName,
      status: outcome.status,
      reason: outcome.reason,
      products: task.info.products.map((p) => basename(p)),
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-pkgforge-id': task.claim.jobId,
      'x-pkgforge-status': outcome.status,
    };
    if (this.params.secret)
      headers['x-pkgforge-signature'] = `sha256=${createHmac('sha256', this.params.secret).update(body).digest('hex')}`;
    const res = await fetch(this.params.url!, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout((this.params.timeout ?? 10) * 1000),
    });
    if (!res.ok) throw new Error(`the webhook answered ${res.status} ${res.statusText}`);
  }
}
