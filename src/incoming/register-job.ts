import { join } from 'node:path';
import { debianTargets } from '../core/debian-arch.ts';
import { manifestFamily, type Manifest } from '../core/manifest.ts';
import type { Target } from '../core/targets.ts';
import type { Registry } from '../registry/registry.ts';
import { registerTasks } from '../registry/tasks.ts';
import { validateDsc } from '../sources/dsc.ts';

/**
 * Stage 5: the job's tasks, one per selected platform of its family and architecture. A Debian
 * job's are narrowed by its `.dsc`s' Architecture fields, read from the accepted copy (`all`
 * builds once per platform, `any` everywhere).
 */
export async function registerJob(registry: Registry, accepted: string, manifest: Manifest): Promise<Target[]> {
  const dscs = manifest.packages.filter((p) => p.type === 'DSC');
  const architectures = await Promise.all(
    dscs.map(async (p) => (await validateDsc(join(accepted, manifest.id, p.file))).architectures),
  );
  return registerTasks(
    registry,
    manifest.id,
    manifest.platforms,
    manifest.archs,
    manifestFamily(manifest),
    dscs.length > 0 ? (selected) => debianTargets(architectures, selected) : undefined,
  );
}
