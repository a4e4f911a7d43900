import { Command, Option } from 'commander';
import { userInfo } from 'node:os';
import { existsSync } from 'node:fs';
import { splitList } from '../core/names.ts';
import { manifestFamily } from '../core/manifest.ts';
import { submitWarnings } from '../core/targets.ts';
import { familyOfSource, type PackageFamily, type PlatformTarget } from '../core/terms.ts';
import { sourceTypeOf } from '../sources/index.ts';
import { basename } from 'node:path';
import type { Config } from '../config/load-config.ts';
import { filesToSend, submitJob } from '../incoming/submit-job.ts';
import { collect, configFor, printJson, type CommonOptions } from './context.ts';

interface SubmitOptions extends CommonOptions {
  server?: string;
  token?: string;
  bucket?: string;
  platforms?: string[];
  archs?: string[];
  report?: string[];
  id?: string;
  target?: string;
  verbose?: boolean;
}

/** Copies larger than this show a progress bar on a terminal. */
const PROGRESS_THRESHOLD = 64 * 1024 * 1024;

export function registerSubmitCommand(program: Command): void {
  program
    .command('submit')
    .description('submit source packages as a build job')
    .argument('<packages...>', 'source packages, in build order')
    .option('-B, --bucket <bucket>', 'the bucket to which the packages will be submitted')
    .option(
      '-p, --platforms <list>',
      'the platforms on which packages should be built (repeatable, comma separated, !name negates)',
      collect,
    )
    .option(
      '-a, --archs <list>',
      'the architectures for which packages should be built (repeatable, comma separated)',
      collect,
    )
    .option('-r, --report <address>', 'e-mail addresses to which build reports will be sent (repeatable)', collect)
    .option('--id <id>', 'the unique identifier for this job (default: generated)')
    .option('--target <dir>', 'location into which jobs should be submitted (default: the incoming directory)')
    .option('--server <url>', 'upload to a PkgForge server over HTTP instead (no shared file system needed)')
    .option('--token <token>', 'the API token for --server (or PKGFORGE_TOKEN, or `token` in submit.yml)')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends to the default list)', collect)
    .option('--verbose', 'verbose output')
    .option('--json', 'print the result as JSON')
    .addOption(new Option('--debug').hideHelp())
    .action(async (files: string[], opts: SubmitOptions) => {
      const config = configFor(['submit.yml'], opts, { userFiles: true });
      const c = config.client;
      // Flags win over the configuration, list by list.
      const fields = {
        bucket: opts.bucket ?? c.bucket ?? undefined,
        platforms: opts.platforms ? splitList(opts.platforms) : [...c.platforms],
        archs: opts.archs ? splitList(opts.archs) : [...c.archs],
        report: opts.report ? splitList(opts.report) : [...c.report],
        id: opts.id,
      };
      // Loaded only for a terminal: scripts and small jobs do not pay for it.
      const cliProgress = process.stderr.isTTY && !opts.json ? (await import('cli-progress')).default : null;
      const bar = cliProgress
        ? new cliProgress.SingleBar(
            {
              format: `${opts.server ? 'uploading' : 'copying'} [{bar}] {percentage}% {value}/{total} bytes`,
              stream: process.stderr,
            },
            cliProgress.Presets.shades_classic,
          )
        : null;
      let started = false;
      const onProgress = (done: number, total: number) => {
        if (!bar || total < PROGRESS_THRESHOLD) return;
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(done);
      };
      if (opts.server) {
        // The same names and sizes are refused here as by a local submission, before any byte is sent.
        const sent = await filesToSend(files, config.submissionLimits);
        const { submitRemote } = await import('../web/client.ts');
        const r = await submitRemote({
          onProgress,
          server: opts.server,
          token: opts.token ?? c.token ?? undefined,
          files: sent,
          fields,
        }).finally(() => started && bar?.stop());
        if (opts.json) return printJson(r);
        console.log(
          `Successfully submitted ${r.packages.length} package${r.packages.length === 1 ? '' : 's'} as build job ${r.id}`,
        );
        const { serverPlatforms } = await import('../web/client.ts');
        warnOfTargets(
          fields,
          familyOfSource(sourceTypeOf(basename(sent[0]!)) ?? 'SRPM'),
          await serverPlatforms(opts.server, opts.token ?? c.token ?? undefined).catch(() => null),
        );
        console.log(`You can follow the progress at ${r.url}`);
        return;
      }
      const manifest = await submitJob({
        files,
        target: opts.target ?? c.target,
        ...fields,
        submitter: userInfo().username,
        limits: config.submissionLimits,
        onFile: (m) => opts.verbose && console.error(m),
        onProgress,
      }).finally(() => started && bar?.stop());
      const url = config.website
        ? `${config.website.replace(/\/$/, '')}/jobs/${encodeURIComponent(manifest.id)}`
        : null;
      if (opts.json)
        return printJson({ id: manifest.id, packages: manifest.packages.map((p) => p.file), size: manifest.size, url });
      console.log(
        `Successfully submitted ${manifest.packages.length} package${manifest.packages.length === 1 ? '' : 's'} as build job ${manifest.id}`,
      );
      warnOfTargets(fields, manifestFamily(manifest), await localPlatforms(config));
      if (url) console.log(`You can follow the progress at ${url}`);
    });
}

/**
 * The platforms of the farm this submitter's configuration names, when it can read its registry
 * (a submitter may only be able to write into incoming): null when it cannot, or not at once.
 */
async function localPlatforms(config: Config): Promise<(PlatformTarget & { active: boolean })[] | null> {
  // Never create a registry by asking it.
  if (config.registry.type === 'sqlite' && !existsSync(config.registry.path)) return null;
  const [{ withRegistry }, { listPlatforms }] = await Promise.all([
    import('./context.ts'),
    import('../registry/platforms.ts'),
  ]);
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 3000)));
  const asked = withRegistry(config, (r) => listPlatforms(r.db), { migrate: false }).catch(() => null);
  return Promise.race([asked, gaveUp]).finally(() => clearTimeout(timer));
}

/** Warns on stderr of a job whose filters select no active platform, or name unknown ones. */
function warnOfTargets(
  fields: { platforms: string[]; archs: string[] },
  family: PackageFamily,
  platforms: (PlatformTarget & { active: boolean })[] | null,
): void {
  if (!platforms) return;
  for (const w of submitWarnings({ platforms: fields.platforms, archs: fields.archs, family }, platforms))
    console.error(`Warning: ${w}`);
}
