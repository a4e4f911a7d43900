import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { manifestFamily } from '../../core/manifest.ts';
import { fileNamesProblem, printable } from '../../core/names.ts';
import type { PackageFamily } from '../../core/terms.ts';
import { uploadNameProblem, type RemoteReport } from '../../core/remote-build.ts';
import { parseDeb822 } from '../../sources/deb822.ts';
import { validateDsc } from '../../sources/dsc.ts';
import { readRpmHeader, RpmTag } from '../../sources/rpm-header.ts';
import { validateSrpm } from '../../sources/srpm.ts';
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
    const sources = new Set(task.manifest.packages.map((p) => p.file));
    const problem = reportProblem(
      this.report.products.map((p) => p.name),
      sources,
      manifestFamily(task.manifest),
    );
    if (problem) throw new PhaseFailure(`The builder on ${this.report.hostname} reported success, but ${problem}`);
    // A source package rebuilt under its own name is the accepted copy, which the builder does not upload.
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
      const foreign = await notOfThisTask(task, taken);
      if (foreign) throw new PhaseFailure(`Refused the product ${name}: ${foreign}`);
      task.info.products.push(taken);
    }
    await assertListedInChanges(task);
    logLine(task, `received ${this.report.products.length} products from ${this.report.hostname}, checked`);
  }
}

/**
 * Why a product is not one this task could have built, or null: a binary RPM must name one of the
 * job's source packages as its source and be of the task's architecture (or noarch), and a `.changes`
 * must be of one of the job's Debian sources. The builder decides what the packages hold, as a
 * submitter's spec does; these checks keep it to its own job and architecture.
 */
async function notOfThisTask(task: TaskRun, product: string): Promise<string | null> {
  const sources = task.manifest.packages;
  if (product.endsWith('.src.rpm')) return "a source package that is not one of the job's";
  if (product.endsWith('.rpm')) {
    const { header } = await readRpmHeader(product);
    const source = header.string(RpmTag.sourceRpm) ?? '';
    // rpmbuild names the source by what the spec says, whatever the submitted file was called.
    const built = await Promise.all(
      sources
        .filter((p) => p.file.endsWith('.src.rpm'))
        .map(async (p) => {
          const info = await validateSrpm(join(task.acceptedDir, p.file));
          return [p.file, `${info.name}-${info.version}-${info.release}.src.rpm`];
        }),
    );
    if (!built.flat().includes(source))
      return `it was built from ${printable(source) || 'no source package'}, not from one of job ${task.claim.jobId}'s`;
    const arch = header.string(RpmTag.arch) ?? '';
    if (arch !== 'noarch' && arch !== task.claim.arch)
      return `it is for ${printable(arch)}, and the task builds for ${task.claim.arch}`;
    return null;
  }
  if (product.endsWith('.changes')) {
    const names = await Promise.all(
      sources
        .filter((p) => p.file.endsWith('.dsc'))
        .map(async (p) => (await validateDsc(join(task.acceptedDir, p.file))).name),
    );
    const source =
      parseDeb822(await readFile(product, 'utf8'))
        .paragraphs[0]?.get('Source')
        ?.split(' ')[0] ?? '';
    if (!names.includes(source))
      return `it is of the source ${printable(source) || '(none)'}, not one of job ${task.claim.jobId}'s`;
  }
  return null;
}

/** The endings of the products a platform family's builds make. */
const FAMILY_ENDINGS: Record<PackageFamily, readonly string[]> = {
  rpm: ['.rpm'],
  deb: ['.deb', '.changes', '.buildinfo'],
};

/**
 * What is wrong with a success's product list as a whole, or null: each name once, only what the
 * platform family's builds make, and at least one package built (not only the job's own sources);
 * a Debian build's `.changes` among them, which says what it built.
 */
function reportProblem(names: string[], sources: Set<string>, family: PackageFamily): string | null {
  const built = names.filter((n) => !sources.has(n));
  if (built.length === 0) return 'no packages built';
  const twice = fileNamesProblem(names);
  if (twice) return `its products are not all different: ${twice}`;
  const foreign = built.find((n) => !FAMILY_ENDINGS[family].some((e) => n.endsWith(e)));
  if (foreign) return `${printable(foreign)} is not what a build of ${family} packages makes`;
  if (family === 'deb' && !built.some((n) => n.endsWith('.changes'))) return 'no .changes among its products';
  return null;
}

/**
 * A Debian build's `.deb` and `.buildinfo` files must each be listed in one of its `.changes` (whose
 * source is checked to be the job's): what the farm publishes is what a `.changes` of this job says.
 */
async function assertListedInChanges(task: TaskRun): Promise<void> {
  const changes = task.info.products.filter((p) => p.endsWith('.changes'));
  if (changes.length === 0) return;
  const listed = new Set<string>();
  for (const c of changes) {
    const files = parseDeb822(await readFile(c, 'utf8')).paragraphs[0]?.get('Files') ?? '';
    for (const line of files.split('\n')) {
      const name = line.trim().split(/\s+/)[4];
      if (name) listed.add(name);
    }
  }
  for (const p of task.info.products) {
    const name = basename(p);
    if ((name.endsWith('.deb') || name.endsWith('.buildinfo')) && !listed.has(name))
      throw new PhaseFailure(`Refused the product ${printable(name)}: no .changes of the build lists it`);
  }
}
