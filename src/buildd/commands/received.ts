import { join } from 'node:path';
import { printable } from '../../core/names.ts';
import { uploadNameProblem, type RemoteReport } from '../../core/remote-build.ts';
import { hashFile } from '../../util/hash.ts';
import { takeDebianProduct, takeRpmProduct } from '../products.ts';
import { logLine, PhaseFailure, type PhaseCommand, type TaskRun } from '../phases.ts';

/**
 * The build phase of a remote build, on the farm: the products the builder uploaded (into the
 * attempt's hidden `.received/`) are taken into the workspace as a local build's are, by the same
 * checks (products.ts: a regular file, within the size limit, what it claims to be), and each must
 * be the file the builder's report names, byte for byte. A product reported and not uploaded, or
 * uploaded and different, fails the task; so does a success with no products.
 */
export class ReceivedProducts implements PhaseCommand {
  readonly name = 'received';
  readonly tools = [];
  constructor(
    private readonly report: RemoteReport,
    private readonly receivedDir: string,
  ) {}

  async run(task: TaskRun): Promise<void> {
    task.info.success = [...this.report.success];
    task.info.failures = [...this.report.failures];
    if (this.report.products.length === 0)
      throw new PhaseFailure(`The builder on ${this.report.hostname} reported success, but no products`);
    // A source package rebuilt under its own name is the accepted copy, which the builder does not upload.
    const sources = new Set(task.manifest.packages.map((p) => p.file));
    for (const product of this.report.products) {
      const name = product.name;
      if (sources.has(name)) {
        task.info.products.push(join(task.acceptedDir, name));
        continue;
      }
      const problem = uploadNameProblem(name);
      if (problem) throw new PhaseFailure(`Refused the product ${printable(name)}: ${problem}`);
      const received = join(this.receivedDir, name);
      const dest = task.workspace.products.host;
      const limit = task.sandbox.limits.product;
      const taken = await (
        name.endsWith('.rpm')
          ? takeRpmProduct(received, dest, name.endsWith('.src.rpm') ? 'source' : 'binary', limit)
          : takeDebianProduct(received, dest, limit)
      ).catch((err: Error) => {
        throw /cannot be opened \(ENOENT\)/.test(err.message)
          ? new PhaseFailure(`The builder reported the product ${name}, but did not upload it`)
          : err;
      });
      const got = await hashFile(taken, ['sha256']);
      if (got.size !== product.size || got.sha256 !== product.sha256)
        throw new PhaseFailure(
          `Refused the product ${name}: the file uploaded (${got.size} bytes, SHA-256 ${got.sha256}) is not the one reported (${product.size} bytes, SHA-256 ${product.sha256})`,
        );
      task.info.products.push(taken);
    }
    logLine(task, `received ${this.report.products.length} products from ${this.report.hostname}, checked`);
  }
}
