import { join } from 'node:path';
import { debianTargets } from '../core/debian-arch.ts';
import { manifestFamily, type Manifest } from '../core/manifest.ts';
import type { Target } from '../core/targets.ts';
import { writeTransaction, type Registry } from '../registry/registry.ts';
import { registerTasksIn } from '../registry/tasks.ts';
import type { BatchedWrite } from '../registry/write-batch.ts';
import { validateDsc } from '../sources/dsc.ts';

/**
 * Stage 5: the job's tasks, one per selected platform of its family and architecture. A Debian
 * job's are narrowed by its `.dsc`s' Architecture fields, read from the accepted copy (`all`
 * builds once per platform, `any` everywhere).
 */
export async function registerJob(registry: Registry, accepted: string, manifest: Manifest): Promise<Target[]> {
  return writeTransaction(registry, await jobRegistration(registry, accepted, manifest));
}

/**
 * registerJob in two steps, for a caller that batches its writes: what the accepted copy says
 * (read first, outside any transaction), then the writes to run inside the caller's transaction.
 */
export async function jobRegistration(
  registry: Registry,
  accepted: string,
  manifest: Manifest,
): Promise<BatchedWrite<Target[]>> {
  const narrow = await narrowingOf(accepted, manifest);
  return (trx) =>
    registerTasksIn(registry, trx, manifest.id, manifest.platforms, manifest.archs, manifestFamily(manifest), narrow);
}

async function narrowingOf(
  accepted: string,
  manifest: Manifest,
): Promise<((selected: Target[]) => Target[]) | undefined> {
  const dscs = manifest.packages.filter((p) => p.type === 'DSC');
  if (dscs.length === 0) return undefined;
  const architectures = await Promise.all(
    dscs.map(async (p) => (await validateDsc(join(accepted, manifest.id, p.file))).architectures),
  );
  return (selected) => debianTargets(architectures, selected);
}
