import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { mkdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import Type from 'typebox';
import { printable, SAFE_NAME_PATTERN } from '../../core/names.ts';
import { METADATA_GENERATION, yumRepoFile } from '../../core/yum-lines.ts';
import { ErrorCode, PkgForgeError } from '../../util/errors.ts';
import type { WebContext } from '../context.ts';
import { requireReader } from './write.ts';
import { publicReposUrl, yumRepositories } from './repositories.ts';

/**
 * What of a bucket's repositories may be read: its yum repositories (packages, `repodata/`, the key)
 * and its APT repository's `dists/`, `pool/` and key, never reprepro's `conf/` and `db/`, and never
 * a dot file (a package being copied in, a lock, a metadata generation but through `repodata`).
 * One rule for the path asked for and for where it leads once links are followed.
 */
const servable = (path: string) =>
  /^\/[^/]+\/(?:deb\/(?:dists\/|pool\/|key\.asc$)|(?!deb\/)[^/]+\/[^/]+\/)/.test(path) && !/\/\./.test(path);

/** A resolved path with its metadata generation named as clients name it: `…/<arch>/repodata/…`. */
const asServed = (real: string) =>
  real
    .split('/')
    .flatMap((seg, i, all) => (METADATA_GENERATION.test(seg) && all[i + 1] === 'repodata' ? [] : [seg]))
    .join('/');

/** Content types by what the repositories hold (the mime table calls an `.rpm` RealAudio). */
const TYPES: [RegExp, string][] = [
  [/\.rpm$/, 'application/x-rpm'],
  [/\.deb$/, 'application/vnd.debian.binary-package'],
  [/(\.asc|\/RPM-GPG-KEY-pkgforge)$/, 'application/pgp-keys'],
  [/\.xml$/, 'application/xml'],
  [/\.gz$/, 'application/gzip'],
  [/\.xz$/, 'application/x-xz'],
  [/\.zst$/, 'application/zstd'],
  [/\.bz2$/, 'application/x-bzip2'],
  [/\/(InRelease|Release|Release\.gpg|Packages|Sources|Contents-[^/]*)$/, 'text/plain; charset=utf-8'],
];

/** What a client must look at again each time: the indexes that name everything else. */
const INDEX = /\/(repodata\/repomd\.xml|InRelease|Release(\.gpg)?)$/;

const RepoFileParams = Type.Object({
  bucket: Type.String({ maxLength: 50, pattern: SAFE_NAME_PATTERN.source }),
  file: Type.String({ maxLength: 60 }),
});

/**
 * The buckets' repositories over HTTP, read-only, at /repos/<bucket>/…: static files with ETag,
 * Last-Modified and ranges, streamed from the disk; and each yum repository's `.repo` file at
 * /repos/<bucket>/<platform>-<arch>.repo, naming the farm's public URL.
 */
export function repoFileRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    requireReader(ctx, app);
    // @fastify/static wants its root to exist; a farm that has published nothing has none yet.
    await mkdir(ctx.repos, { recursive: true });
    const root = await realpath(ctx.repos);
    // @fastify/static follows symbolic links and checks only the path asked for: what a link
    // resolves to must pass the same rules, inside the root (the one link the farm makes,
    // `repodata`, resolves to its arch's `.meta-…/repodata/`).
    app.addHook('onRequest', async (req) => {
      if (!req.url.startsWith('/repos/')) return;
      let asked: string;
      try {
        asked = decodeURIComponent(req.url.slice('/repos'.length).split('?')[0]!);
      } catch {
        return; // the static handler answers a path it cannot decode
      }
      const real = await realpath(join(root, asked)).catch(() => null);
      if (real === null) return; // nothing there: the static handler's 404
      if (real === root) return; // the static handler lists nothing
      if (!real.startsWith(`${root}/`) || !servable(asServed(real.slice(root.length))))
        throw new PkgForgeError(ErrorCode.notFound, `No file ${printable(asked, 200)} in the repositories`);
    });
    await app.register(fastifyStatic, {
      root: ctx.repos,
      prefix: '/repos/',
      decorateReply: false,
      index: false,
      list: false,
      dotfiles: 'ignore',
      allowedPath: servable,
      setHeaders: (reply: FastifyReply, path: string) => {
        const type = TYPES.find(([re]) => re.test(path))?.[1];
        if (type) reply.header('content-type', type);
        reply.header('x-content-type-options', 'nosniff');
        if (INDEX.test(path)) reply.header('cache-control', 'no-cache');
      },
    });

    app.get('/repos/:bucket/:file', { schema: { hide: true, params: RepoFileParams } }, async (req, reply) => {
      const m = /^(.+)-([^-]+)\.repo$/.exec(req.params.file);
      const { bucket } = req.params;
      const found = m && (await yumRepositories(ctx.repos, bucket)).find((r) => r.platform === m[1] && r.arch === m[2]);
      if (!found)
        throw new PkgForgeError(
          ErrorCode.notFound,
          `Bucket ${bucket} has no yum repository '${req.params.file.replace(/\.repo$/, '')}'`,
        );
      return (
        reply
          .header('content-type', 'text/plain; charset=utf-8')
          .header('x-content-type-options', 'nosniff')
          // Its addresses name the host asked for (without public_url): a shared cache must not mix them.
          .header('vary', 'host')
          .header('cache-control', 'no-cache')
          .header('content-disposition', `inline; filename="${req.params.file}"`)
          .send(yumRepoFile(publicReposUrl(ctx, req), bucket, found.platform, found.arch, found.signed))
      );
    });
  };
}
