import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Type, { type Static } from 'typebox';
import { APT_KEY_FILE, aptInstallScript, aptKeyPath, aptSourceLine } from '../../core/apt-lines.ts';
import { SAFE_NAME_PATTERN } from '../../core/names.ts';
import { RPM_KEY_FILE, yumInstallScript, yumRepoFile, yumRepoId } from '../../core/yum-lines.ts';
import { ErrorCode, PkgForgeError } from '../../util/errors.ts';
import type { WebContext } from '../context.ts';
import { aptPackages, yumPackages, type PublishedPackage } from '../published.ts';

const BucketParams = Type.Object({ bucket: Type.String({ maxLength: 50, pattern: SAFE_NAME_PATTERN.source }) });

export const AptRepository = Type.Object({
  bucket: Type.String(),
  /** Where the repository is: under the farm's public URL (`public_url`, else the address asked). */
  url: Type.String(),
  /** The API path of the armoured public key the repository is signed with. */
  key: Type.String(),
  /** The same key, served beside the repository. */
  keyUrl: Type.String(),
  /** Where the lines below expect the key on the user's machine. */
  keyPath: Type.String(),
  suites: Type.Array(Type.Object({ platform: Type.String(), line: Type.String() })),
});

export type AptRepositoryInfo = Static<typeof AptRepository>;

export const YumRepository = Type.Object({
  bucket: Type.String(),
  platform: Type.String(),
  arch: Type.String(),
  /** dnf's name for it, and its `.repo` file's. */
  id: Type.String(),
  /** Where its `.repo` file is served. */
  repoFile: Type.String(),
  baseurl: Type.String(),
  /** Its packages are signed, and the key is published beside them (`gpgkey=`). */
  signed: Type.Boolean(),
  /** The `.repo` file itself. */
  text: Type.String(),
});

export const BucketRepositories = Type.Object({
  bucket: Type.String(),
  yum: Type.Array(YumRepository),
  apt: Type.Union([AptRepository, Type.Null()]),
});

/**
 * Where users reach the farm, without a trailing slash: `public_url`, else the scheme and host the
 * request was made to (a Host header that is not a plain host[:port] is not repeated back: the
 * listening address is used instead).
 */
export function publicBaseUrl(ctx: { publicUrl?: string | null }, req: FastifyRequest): string {
  if (ctx.publicUrl) return ctx.publicUrl.replace(/\/+$/, '');
  const m =
    /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(
      req.host,
    );
  const local = req.socket.localAddress;
  const host =
    m && req.host.length <= 255 && Number(m[1] ?? 0) <= 65535
      ? req.host
      : local
        ? `${local.includes(':') ? `[${local}]` : local}:${req.socket.localPort}`
        : 'localhost';
  return `${req.protocol}://${host}`;
}

/** Where the buckets' repositories are for a user (publicBaseUrl's `/repos`). */
export const publicReposUrl = (ctx: { publicUrl?: string | null }, req: FastifyRequest): string =>
  `${publicBaseUrl(ctx, req)}/repos`;

/**
 * A bucket's yum repositories, one per platform/arch directory with published metadata, with what
 * `.repo` files need: whether its packages are signed (the key was published beside them).
 */
export async function yumRepositories(
  repos: string,
  bucket: string,
): Promise<{ platform: string; arch: string; signed: boolean }[]> {
  const found: { platform: string; arch: string; signed: boolean }[] = [];
  const dirs = async (dir: string) =>
    (await readdir(dir, { withFileTypes: true }).catch(() => []))
      .filter((d) => d.isDirectory() && SAFE_NAME_PATTERN.test(d.name) && d.name !== 'deb')
      .map((d) => d.name)
      .sort();
  for (const platform of await dirs(join(repos, bucket)))
    for (const arch of await dirs(join(repos, bucket, platform))) {
      const repo = join(repos, bucket, platform, arch);
      if (!(await stat(join(repo, 'repodata', 'repomd.xml')).catch(() => null))) continue;
      found.push({ platform, arch, signed: !!(await stat(join(repo, RPM_KEY_FILE)).catch(() => null)) });
    }
  return found;
}

/** Everything a user needs to install from a bucket: the `.repo` files and the APT lines. */
export async function bucketRepositories(repos: string, bucket: string, reposUrl: string) {
  const yum = (await yumRepositories(repos, bucket)).map((r) => ({
    bucket,
    ...r,
    id: yumRepoId(bucket, r.platform, r.arch),
    repoFile: `${reposUrl}/${bucket}/${r.platform}-${r.arch}.repo`,
    baseurl: `${reposUrl}/${bucket}/${r.platform}/${r.arch}`,
    text: yumRepoFile(reposUrl, bucket, r.platform, r.arch, r.signed),
  }));
  return { bucket, yum, apt: await aptRepository(repos, bucket, reposUrl) };
}

const Published = Type.Array(
  Type.Object({
    name: Type.String(),
    version: Type.String(),
    arch: Type.String(),
    file: Type.String(),
    publishedAt: Type.Unsafe<string | null>({ type: ['string', 'null'], format: 'date-time' }),
  }),
);

export const BucketContents = Type.Object({
  bucket: Type.String(),
  yum: Type.Array(
    Type.Object({
      ...YumRepository.properties,
      script: Type.String({ description: 'how to add it' }),
      packages: Published,
    }),
  ),
  apt: Type.Union([
    Type.Object({
      ...AptRepository.properties,
      script: Type.String({ description: 'how to trust its key and add its suites' }),
      suites: Type.Array(Type.Object({ platform: Type.String(), line: Type.String(), packages: Published })),
    }),
    Type.Null(),
  ]),
});

/** What a bucket publishes now, per repository, with the lines to install from it; null: nothing. */
export async function bucketContents(repos: string, bucket: string, reposUrl: string) {
  const found = await bucketRepositories(repos, bucket, reposUrl);
  if (found.yum.length === 0 && !found.apt) return null;
  const shown = (p: PublishedPackage) => ({
    ...p,
    publishedAt: p.publishedAt === null ? null : new Date(p.publishedAt).toISOString(),
  });
  return {
    bucket,
    yum: await Promise.all(
      found.yum.map(async (y) => ({
        ...y,
        script: yumInstallScript(y.id, y.repoFile),
        packages: (await yumPackages(join(repos, bucket, y.platform, y.arch))).map(shown),
      })),
    ),
    apt: found.apt && {
      ...found.apt,
      script: aptInstallScript(
        found.apt.keyPath,
        found.apt.keyUrl,
        bucket,
        found.apt.suites.map((s) => s.line),
      ),
      suites: await Promise.all(
        found.apt.suites.map(async (s) => ({
          ...s,
          packages: (await aptPackages(repos, bucket, s.platform)).map(shown),
        })),
      ),
    },
  };
}

/**
 * A bucket's APT repository as a user adds it, or null when nothing was published into it: its
 * suites from reprepro's conf/distributions (the farm's own file), one line each.
 */
export async function aptRepository(
  repos: string,
  bucket: string,
  reposUrl: string,
): Promise<AptRepositoryInfo | null> {
  const repo = join(repos, bucket, 'deb');
  const conf = await readFile(join(repo, 'conf', 'distributions'), 'utf8').catch(() => null);
  if (conf === null || !(await stat(join(repo, APT_KEY_FILE)).catch(() => null))) return null;
  const url = `${reposUrl}/${bucket}/deb`;
  return {
    bucket,
    url,
    key: `/api/v1/buckets/${encodeURIComponent(bucket)}/apt/${APT_KEY_FILE}`,
    keyUrl: `${url}/${APT_KEY_FILE}`,
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
      '/buckets/:bucket',
      {
        schema: {
          summary: 'What a bucket publishes now: each repository, its packages and versions, and how to add it',
          tags: ['repositories'],
          params: BucketParams,
          response: { 200: BucketContents },
        },
      },
      async (req) => {
        const found = await bucketContents(ctx.repos, req.params.bucket, publicReposUrl(ctx, req));
        if (!found)
          throw new PkgForgeError(
            ErrorCode.notFound,
            `Nothing has been published into bucket ${req.params.bucket} yet`,
          );
        return found;
      },
    );

    app.get(
      '/buckets/:bucket/repositories',
      {
        schema: {
          summary: "A bucket's repositories as users add them: a .repo file per yum repository, the APT lines",
          tags: ['repositories'],
          params: BucketParams,
          response: { 200: BucketRepositories },
        },
      },
      async (req) => bucketRepositories(ctx.repos, req.params.bucket, publicReposUrl(ctx, req)),
    );

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
        const repo = await aptRepository(ctx.repos, req.params.bucket, publicReposUrl(ctx, req));
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
