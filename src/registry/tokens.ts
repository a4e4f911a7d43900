import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { printable, userNameProblem } from '../core/names.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import type { Database } from './schema.ts';

export interface TokenInfo {
  id: number;
  user: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
  /** A builder token's builder (then `user` is the builder's name too); null for a user's token. */
  builder: string | null;
}

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

async function insertToken(db: Kysely<Database>, user: string, builderId: number | null) {
  const token = `pkgf_${randomBytes(24).toString('base64url')}`;
  const row = await db
    .insertInto('tokens')
    .values({
      user,
      hash: hashOf(token),
      created_at: Date.now(),
      last_used_at: null,
      revoked_at: null,
      builder_id: builderId,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { id: row.id, token };
}

/** Makes a token for a user. The token is returned once; only its hash is stored. */
export async function createToken(db: Kysely<Database>, user: string): Promise<{ id: number; token: string }> {
  const problem = userNameProblem(user);
  if (problem)
    throw new PkgForgeError(ErrorCode.invalidName, `Cannot make a token for '${printable(user)}': ${problem}`);
  return insertToken(db, user, null);
}

/**
 * Makes a token for a registered builder: a remote build daemon's only credential. It acts for
 * that builder alone and is never accepted where a user's token is needed.
 */
export async function createBuilderToken(
  db: Kysely<Database>,
  builder: string,
): Promise<{ id: number; token: string }> {
  const row = await db.selectFrom('builders').select('id').where('name', '=', builder).executeTakeFirst();
  if (!row)
    throw new PkgForgeError(
      ErrorCode.notFound,
      `There is no builder named '${printable(builder)}' (add it with \`pkgforge builder add\`)`,
    );
  return insertToken(db, builder, row.id);
}

/** The valid, unrevoked token's row, its last use noted (best effort), or null. */
async function tokenRow(db: Kysely<Database>, token: string) {
  if (!token.startsWith('pkgf_') || token.length > 100) return null;
  const row = await db
    .selectFrom('tokens')
    .select(['id', 'user', 'builder_id'])
    .where('hash', '=', hashOf(token))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row) return null;
  // Best effort: a web server whose role may not write still authenticates.
  await db
    .updateTable('tokens')
    .set({ last_used_at: Date.now() })
    .where('id', '=', row.id)
    .execute()
    .catch(() => {});
  return row;
}

/** The user a valid, unrevoked user's token belongs to, or null (a builder's token is not a user's). */
export async function userOfToken(db: Kysely<Database>, token: string): Promise<string | null> {
  const row = await tokenRow(db, token);
  return row && row.builder_id === null ? row.user : null;
}

/** The builder (its id) a valid, unrevoked builder token acts for, or null. */
export async function builderOfToken(db: Kysely<Database>, token: string): Promise<number | null> {
  return (await tokenRow(db, token))?.builder_id ?? null;
}

export async function listTokens(db: Kysely<Database>): Promise<TokenInfo[]> {
  const rows = await db
    .selectFrom('tokens')
    .select(['id', 'user', 'created_at', 'last_used_at', 'revoked_at', 'builder_id'])
    .orderBy('id')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    user: r.user,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
    builder: r.builder_id === null ? null : r.user,
  }));
}

export async function revokeToken(db: Kysely<Database>, id: number): Promise<void> {
  const r = await db
    .updateTable('tokens')
    .set({ revoked_at: Date.now() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) throw new PkgForgeError(ErrorCode.notFound, `There is no active token ${id}`);
}
