import { lstat, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { manifestFamily } from '../../core/manifest.ts';
import { fileNamesProblem, printable } from '../../core/names.ts';
import type { PackageFamily } from '../../core/terms.ts';
import { uploadNameProblem, type RemoteReport } from '../../core/remote-build.ts';
import { parseDeb822 } from '../../sources/deb822.ts';
import { listedFiles, validateDsc } from '../../sources/dsc.ts';
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
    // In the report's order; the record gets them once they are all taken and tied to this task.
    const kept: string[] = [];
    const taken: { path: string; size: number; sha256: string }[] = [];
    for (const product of this.report.products) {
      const name = product.name;
      // A source package rebuilt under its own name is the accepted copy, which the builder does not upload.
      if (sources.has(name)) {
        kept.push(join(task.acceptedDir, name));
        continue;
      }
      const problem = uploadNameProblem(name);
      if (problem) throw new PhaseFailure(`Refused the product ${printable(name)}: ${problem}`);
      const received = join(this.receivedDir, name);
      if (!(await lstat(received).catch(() => null)))
        throw new PhaseFailure(`The builder reported the product ${name}, but did not upload it`);
      const dest = task.workspace.products.host;
      const limit = task.sandbox.limits.product;
      const copy = await (name.endsWith('.rpm')
        ? takeRpmProduct(received, dest, name.endsWith('.src.rpm') ? 'source' : 'binary', limit)
        : takeDebianProduct(received, dest, limit));
      const got = await hashFile(copy, ['sha256']);
      if (got.size !== product.size || got.sha256 !== product.sha256)
        throw new PhaseFailure(
          `Refused the product ${name}: the file uploaded (${got.size} bytes, SHA-256 ${got.sha256}) is not the one reported (${product.size} bytes, SHA-256 ${product.sha256})`,
        );
      taken.push({ path: copy, size: got.size, sha256: got.sha256! });
      kept.push(copy);
    }
    await assertOfThisTask(task, taken);
    task.info.products.push(...kept);
    logLine(task, `received ${this.report.products.length} products from ${this.report.hostname}, checked`);
  }
}

/**
 * Refuses a product this task could not have built: a binary RPM must name one of the job's source
 * packages as its source and be of the task's architecture (or noarch); a `.changes` must be of one
 * of the job's Debian sources, and each `.deb` and `.buildinfo` listed, size and SHA-256, in one of
 * them. The builder decides what the packages hold, as a submitter's spec does; these checks keep
 * it to its own job and architecture. The job's sources are read once, each `.changes` once.
 */
async function assertOfThisTask(
  task: TaskRun,
  products: { path: string; size: number; sha256: string }[],
): Promise<void> {
  const { claim, acceptedDir, manifest } = task;
  const refuse = (product: string, why: string) =>
    new PhaseFailure(`Refused the product ${printable(basename(product))}: ${why}`);
  const ofJob = (ending: string) => manifest.packages.filter((p) => p.file.endsWith(ending));
  // rpmbuild names the source by what the spec says, whatever the submitted file was called.
  const rpmSources = new Set<string>();
  for (const p of ofJob('.src.rpm')) {
    const info = await validateSrpm(join(acceptedDir, p.file));
    rpmSources.add(p.file).add(`${info.name}-${info.version}-${info.release}.src.rpm`);
  }
  const debSources = new Set<string>();
  for (const p of ofJob('.dsc')) debSources.add((await validateDsc(join(acceptedDir, p.file))).name);
  const listed = new Map<string, { size: number; sha256sum: string }>();
  for (const { path: product } of products) {
    if (product.endsWith('.src.rpm')) throw refuse(product, "a source package that is not one of the job's");
    if (product.endsWith('.rpm')) {
      const { header } = await readRpmHeader(product);
      const source = header.string(RpmTag.sourceRpm) ?? '';
      if (!rpmSources.has(source))
        throw refuse(
          product,
          `it was built from ${printable(source) || 'no source package'}, not from one of job ${claim.jobId}'s`,
        );
      const arch = header.string(RpmTag.arch) ?? '';
      if (arch !== 'noarch' && arch !== claim.arch)
        throw refuse(product, `it is for ${printable(arch)}, and the task builds for ${claim.arch}`);
    } else if (product.endsWith('.changes')) {
      const fields = parseDeb822(await readFile(product, 'utf8')).paragraphs[0];
      const source = fields?.get('Source')?.split(' ')[0] ?? '';
      if (!debSources.has(source))
        throw refuse(product, `it is of the source ${printable(source) || '(none)'}, not one of job ${claim.jobId}'s`);
      const fail = (why: string) => refuse(product, why);
      for (const part of listedFiles(fields?.get('Checksums-Sha256') ?? '', 'Checksums-Sha256', /^[0-9a-f]{64}$/, fail))
        listed.set(part.file, part);
    }
  }
  for (const { path: product, size, sha256 } of products) {
    if (!product.endsWith('.deb') && !product.endsWith('.buildinfo')) continue;
    const entry = listed.get(basename(product));
    if (!entry) throw refuse(product, 'no .changes of the build lists it');
    if (size !== entry.size || sha256 !== entry.sha256sum)
      throw refuse(product, 'it is not the file its .changes lists (size or SHA-256)');
  }
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
