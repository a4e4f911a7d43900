import type { Command } from 'commander';
import { SAFE_NAME_PATTERN } from '../core/names.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { collect, configFor, printJson, type CommonOptions } from './context.ts';

export function registerRepoCommands(program: Command): void {
  const repo = program.command('repo').description("the buckets' repositories, as users install from them");
  repo
    .command('show <bucket>')
    .description("print a bucket's .repo files (one per yum repository) and APT lines, at the farm's public_url")
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (bucket: string, opts: CommonOptions) => {
      if (!SAFE_NAME_PATTERN.test(bucket) || bucket.length > 50)
        throw new PkgForgeError(ErrorCode.usage, `'${bucket}' is not a bucket name`);
      const config = configFor(['web.yml'], opts);
      const { bucketRepositories } = await import('../web/routes/repositories.ts');
      // Without public_url the terminal knows no address of the web server: the paths on this host.
      const reposUrl = config.web.publicUrl ? `${config.web.publicUrl}/repos` : `file://${config.repos}`;
      const found = await bucketRepositories(config.repos, bucket, reposUrl);
      if (opts.json) return printJson(found);
      if (found.yum.length === 0 && !found.apt)
        throw new PkgForgeError(ErrorCode.notFound, `Nothing has been published into bucket ${bucket} yet`);
      if (!config.web.publicUrl)
        console.error(
          'public_url is not set: these addresses are paths on this host; set it to the web server address for other machines',
        );
      const out: string[] = [];
      for (const y of found.yum) out.push(`# /etc/yum.repos.d/${y.id}.repo`, y.text);
      if (found.apt)
        out.push(
          `# APT: the key into ${found.apt.keyPath} (${found.apt.keyUrl}), then in /etc/apt/sources.list.d/pkgforge-${bucket}.list:`,
          ...found.apt.suites.map((s) => s.line),
          '',
        );
      process.stdout.write(out.join('\n'));
    });
}
