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
}

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');
/** Makes a token for a user. The token is returned once; only its hash is stored. */
export async function createToken(db: Kysely<Database>, user: string): Promise<{ id: number; token: string }> {
  const problem = userNameProblem(user);
  if (problem)
    throw new PkgForgeError(ErrorCode.invalidName, `Cannot make a token for '${printable(user)}': ${problem}`);
  const token = `pkgf_${randomBytes(24).toString('base64url')}`;
  const row = await db
    .insertInto('tokens')
    .values({ user, hash: hashOf(token), created_at: Date.now(), last_used_at: null, revoked_at: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { id: row.id, token };
}

/** The user a valid, unrevoked token belongs to, or null. */
export async function userOfToken(db: Kysely<Database>, token: string): Promise<string | null> {
  if (!token.startsWith('pkgf_') || token.length > 100) return null;
  const row = await db
    .selectFrom('tokens')
    .select(['id', 'user'])
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
  return row.user;
}

export async function listTokens(db: Kysely<Database>): Promise<TokenInfo[]> {
  const rows = await db
    .selectFrom('tokens')
    .select(['id', 'user', 'created_at', 'last_used_at', 'revoked_at'])
    .orderBy('id')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    user: r.user,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
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
