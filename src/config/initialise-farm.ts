import { DEFAULTS } from './defaults.ts';
import { describeRegistry, type Config } from './load-config.ts';
import { familyOfBuilder } from '../core/terms.ts';
import { detectHostPlatform } from './host-platform.ts';
import { addPlatform, changePlatform, findPlatform, listPlatforms } from '../registry/platforms.ts';
import type { Registry } from '../registry/registry.ts';
import { ensureDir } from '../util/fs-safe.ts';

export interface InitReport {
  directories: Record<string, string>;
  registry: string;
  hostPlatform: string | null;
}

/**
 * Creates the directories and brings the registry up to date. On the embedded default, a registry
 * with no platforms gets this host's platform, active and auto, so a first job has somewhere to go.
 */
export async function initialiseFarm(config: Config, registry: Registry): Promise<InitReport> {
  const directories = {
    incoming: config.incoming,
    accepted: config.accepted,
    results: config.results,
    tmpdir: config.tmpdir,
    logdir: config.logdir,
  };
  for (const [key, dir] of Object.entries(directories))
    await ensureDir(dir, key === 'tmpdir' ? DEFAULTS.tmpdirMode : 0o755);
  let hostPlatform: string | null = null;
  if (config.layout.home && (await listPlatforms(registry.db)).length === 0) {
    const host = detectHostPlatform(config.platform);
    // The host's platform builds what the host's builder builds (rpmbuild, also on a Debian host: RPMs).
    const family = familyOfBuilder(config.buildd.builder.name);
    if (!(await findPlatform(registry.db, host.name, host.arch)))
      await addPlatform(registry.db, host.name, host.arch, family);
    await changePlatform(registry.db, host.name, host.arch, 'activate');
    await changePlatform(registry.db, host.name, host.arch, 'setauto');
    hostPlatform = `${host.name}/${host.arch}`;
  }
  return { directories, registry: describeRegistry(config.registry), hostPlatform };
}
