import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Type, { type Static } from 'typebox';
import { APT_KEY_FILE, aptKeyPath, aptSourceLine } from '../../core/apt-lines.ts';
import { SAFE_NAME_PATTERN } from '../../core/names.ts';
import { ErrorCode, PkgForgeError } from '../../util/errors.ts';
import type { WebContext } from '../context.ts';

const BucketParams = Type.Object({ bucket: Type.String({ maxLength: 50, pattern: SAFE_NAME_PATTERN.source }) });

export const AptRepository = Type.Object({
  bucket: Type.String(),
  /** Where the repository is; `file://` on the farm's host until repositories are served over HTTP. */
  url: Type.String(),
  /** The API path of the armoured public key the repository is signed with. */
  key: Type.String(),
  /** Where the lines below expect the key on the user's machine. */
  keyPath: Type.String(),
  suites: Type.Array(Type.Object({ platform: Type.String(), line: Type.String() })),
});

export type AptRepositoryInfo = Static<typeof AptRepository>;

/**
 * A bucket's APT repository as a user adds it, or null when nothing was published into it: its
 * suites from reprepro's conf/distributions (the farm's own file), one line each.
 */
export async function aptRepository(repos: string, bucket: string): Promise<AptRepositoryInfo | null> {
  const repo = join(repos, bucket, 'deb');
  const conf = await readFile(join(repo, 'conf', 'distributions'), 'utf8').catch(() => null);
  if (conf === null || !(await stat(join(repo, APT_KEY_FILE)).catch(() => null))) return null;
  const url = `file://${repo}`;
  return {
    bucket,
    url,
    key: `/api/v1/buckets/${encodeURIComponent(bucket)}/apt/${APT_KEY_FILE}`,
    keyPath: aptKeyPath(bucket),
    suites: [...conf.matchAll(/^Codename: (\S+)$/gm)].map(([, platform]) => ({
      platform: platform!,
      line: aptSourceLine(url, bucket, platform!),
    })),
  };
}

/** Buckets' repositories as users add them: the APT line per platform, and the key that signs them. */
export function repositoryRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/buckets/:bucket/apt',
      {
        schema: {
          summary: "A bucket's APT repository: one sources line per platform, and its signing key",
          tags: ['repositories'],
          params: BucketParams,
          response: { 200: AptRepository },
        },
      },
      async (req) => {
        const repo = await aptRepository(ctx.repos, req.params.bucket);
        if (!repo)
          throw new PkgForgeError(
            ErrorCode.notFound,
            `Nothing has been published into an APT repository of bucket ${req.params.bucket}`,
          );
        return repo;
      },
    );

    app.get(
      `/buckets/:bucket/apt/${APT_KEY_FILE}`,
      {
        schema: {
          summary: "The armoured public key a bucket's APT repository is signed with",
          tags: ['repositories'],
          params: BucketParams,
        },
      },
      async (req, reply) => {
        const file = join(ctx.repos, req.params.bucket, 'deb', APT_KEY_FILE);
        const st = await stat(file).catch(() => null);
        if (!st?.isFile())
          throw new PkgForgeError(ErrorCode.notFound, `Bucket ${req.params.bucket} has no signed APT repository yet`);
        return reply
          .header('content-type', 'application/pgp-keys')
          .header('content-length', st.size)
          .send(createReadStream(file));
      },
    );
  };
}
