import type { Kysely } from 'kysely';
import { familyOfPlatformName, type PackageFamily, type PlatformTarget } from '../core/terms.ts';
import { archNameProblem, platformNameProblem } from '../core/names.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import type { Database, PlatformRow } from './schema.ts';

export interface Platform {
  id: number;
  name: string;
  arch: string;
  active: boolean;
  auto: boolean;
  family: PackageFamily;
}

const toPlatform = (r: PlatformRow): Platform => ({
  id: r.id,
  name: r.name,
  arch: r.arch,
  active: r.active === 1,
  auto: r.auto === 1,
  family: r.family,
});
const label = (name: string, arch: string) => `${name}/${arch}`;

export async function listPlatforms(db: Kysely<Database>): Promise<Platform[]> {
  const rows = await db.selectFrom('platforms').selectAll().orderBy('name').orderBy('arch').execute();
  return rows.map(toPlatform);
}

/** The active platforms, as target selection takes them. */
export async function activeTargets(db: Kysely<Database>): Promise<(PlatformTarget & { id: number })[]> {
  const rows = await db
    .selectFrom('platforms')
    .selectAll()
    .where('active', '=', 1)
    .orderBy('name')
    .orderBy('arch')
    .execute();
  return rows.map((r) => ({ id: r.id, name: r.name, arch: r.arch, auto: r.auto === 1, family: r.family }));
}

export async function findPlatform(db: Kysely<Database>, name: string, arch: string): Promise<Platform | null> {
  const row = await db
    .selectFrom('platforms')
    .selectAll()
    .where('name', '=', name)
    .where('arch', '=', arch)
    .executeTakeFirst();
  return row ? toPlatform(row) : null;
}

/**
 * Adds a platform, inactive and not auto, as the original did. Its family is given, or the one its
 * name says (`deb12`: deb); every architecture of one platform name is of one family.
 */
export async function addPlatform(
  db: Kysely<Database>,
  name: string,
  arch: string,
  family: PackageFamily = familyOfPlatformName(name),
): Promise<Platform> {
  const problem = platformNameProblem(name) ?? archNameProblem(arch);
  if (problem) throw new PkgForgeError(ErrorCode.invalidName, `Cannot add ${label(name, arch)} platform: ${problem}`);
  if (await findPlatform(db, name, arch))
    throw new PkgForgeError(ErrorCode.exists, `Cannot add ${label(name, arch)} platform, it already exists.`);
  const sibling = await db.selectFrom('platforms').select('family').where('name', '=', name).executeTakeFirst();
  if (sibling && sibling.family !== family)
    throw new PkgForgeError(
      ErrorCode.usage,
      `Cannot add ${label(name, arch)} platform as ${family}: the platform ${name} builds ${sibling.family} packages on its other architectures`,
    );
  const row = await db
    .insertInto('platforms')
    .values({ name, arch, active: 0, auto: 0, family, created_at: Date.now() })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toPlatform(row);
}

export type PlatformChange = 'activate' | 'deactivate' | 'setauto' | 'unsetauto';

/** Changes a platform's flags. Deactivating also clears auto; setting auto does not activate. */
export async function changePlatform(
  db: Kysely<Database>,
  name: string,
  arch: string,
  change: PlatformChange,
): Promise<Platform> {
  const values =
    change === 'activate'
      ? { active: 1 }
      : change === 'deactivate'
        ? { active: 0, auto: 0 }
        : change === 'setauto'
          ? { auto: 1 }
          : { auto: 0 };
  const row = await db
    .updateTable('platforms')
    .set(values)
    .where('name', '=', name)
    .where('arch', '=', arch)
    .returningAll()
    .executeTakeFirst();
  if (!row)
    throw new PkgForgeError(ErrorCode.notFound, `Cannot modify ${label(name, arch)} platform, it does not exist.`);
  return toPlatform(row);
}
