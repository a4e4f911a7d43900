import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import YAML from 'yaml';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { builderIdentity, claimNextTask, finishAttempt } from '../../src/registry/attempts.ts';
import { insertJob, markJobValid } from '../../src/registry/jobs.ts';
import { registerTasks } from '../../src/registry/tasks.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { addPlatforms, makeFarm, type TestFarm } from './farm.ts';
import type { Dialect } from './registries.ts';

export interface JobDirOptions {
  /** Values that replace or add to the manifest's top-level keys. */
  manifest?: Record<string, unknown>;
  /** Write this text as build.yml instead of a manifest. */
  rawManifest?: string;
  /** Leave build.yml out. */
  noManifest?: boolean;
  /** Change a package entry after its checksums are computed. */
  editPackage?: (entry: Record<string, unknown>, index: number) => void;
}

export function digest(path: string, algorithm: 'sha1' | 'sha256'): string {
  return createHash(algorithm).update(readFileSync(path)).digest('hex');
}

/**
 * Writes a job directory into incoming by hand, as a user (or an attacker) could, bypassing
 * `pkgforge submit`'s checks.
 */
export function writeJobDir(incoming: string, name: string, files: string[], options: JobDirOptions = {}): string {
  const dir = join(incoming, name);
  mkdirSync(dir);
  const packages = files.map((f, i) => {
    copyFileSync(f, join(dir, basename(f)));
    const entry: Record<string, unknown> = {
      file: basename(f),
      type: 'SRPM',
      size: readFileSync(f).length,
      sha1sum: digest(f, 'sha1'),
      sha256sum: digest(f, 'sha256'),
    };
    options.editPackage?.(entry, i);
    return entry;
  });
  if (!options.noManifest) {
    const text =
      options.rawManifest ??
      YAML.stringify({ id: name, bucket: 'devel', platforms: ['auto'], archs: ['all'], packages, ...options.manifest });
    writeFileSync(join(dir, 'build.yml'), text);
  }
  return dir;
}

/**
 * A job registered straight into the registry (no files), carrying one SRPM; with `name`, its
 * package is marked valid under that name and version, as the incoming processor would.
 */
export async function registeredJob(
  farm: TestFarm,
  id: string,
  o: { bucket?: string; submitter?: string; name?: string; version?: string } = {},
): Promise<void> {
  const file = `${(o.name ?? id).replace(/[^A-Za-z0-9.+-]/g, '_')}-${o.version ?? '1'}-1.src.rpm`;
  const m = normaliseManifest(
    { id, bucket: o.bucket ?? 'devel', packages: [{ file, type: 'SRPM', size: 10, sha1sum: 'a'.repeat(40) }] },
    id,
  );
  await insertJob(farm.registry, m, {
    submitter: o.submitter ?? 'alice',
    submittedAt: Date.now(),
    incomingEntry: null,
  });
  if (o.name !== undefined)
    await markJobValid(farm.registry, id, [{ position: 0, name: o.name, version: o.version ?? '1', release: '1' }]);
  await registerTasks(farm.registry, id, m.platforms, m.archs, 'rpm');
}

/** Builder `builder` claims the oldest task and ends it so; returns the claimed job's id. */
export async function finishNextTask(
  farm: TestFarm,
  builder: string,
  outcome: 'success' | 'fail',
  reason: string | null = null,
): Promise<string> {
  const me = (await builderIdentity(farm.registry.db, builder))!;
  const claim = (await claimNextTask(farm.registry, me, 'h', 60_000))!;
  await finishAttempt(farm.registry, claim, outcome, reason, null);
  return claim.jobId;
}

/** A farm with one active platform, el9/x86_64, and its builder b1. */
export async function el9Farm(dialect: Dialect): Promise<TestFarm> {
  const farm = await makeFarm(dialect);
  await addPlatforms(farm, 'el9/x86_64*');
  await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
  return farm;
}
