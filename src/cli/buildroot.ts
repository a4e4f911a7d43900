import { readdir } from 'node:fs/promises';
import type { Command } from 'commander';
import { describeBuildRoot, findBuildRoot, makeBuildRoot, type BuildRoot } from '../buildd/buildroot.ts';
import { hostAptMirror } from '../config/apt-sources.ts';
import { hostArch } from '../config/host-platform.ts';
import type { Config } from '../config/load-config.ts';
import { archNameProblem, platformNameProblem } from '../core/names.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { collect, configFor, printJson, type CommonOptions } from './context.ts';

interface BuildRootOptions extends CommonOptions {
  arch?: string;
  mirror?: string;
}

/** The mirror a build root is made from: the flag, else `debian_mirror`, else the host's apt mirror. */
async function mirrorFor(config: Config, opts: BuildRootOptions): Promise<string> {
  const mirror = opts.mirror ?? config.debianMirror ?? (await hostAptMirror());
  if (!mirror)
    throw new PkgForgeError(
      ErrorCode.config,
      "No Debian mirror is known: this host's apt has none, and neither --mirror nor debian_mirror names one",
    );
  return mirror;
}

function target(platform: string, opts: BuildRootOptions): { platform: string; arch: string } {
  const arch = opts.arch ?? hostArch();
  const problem = platformNameProblem(platform) ?? archNameProblem(arch);
  if (problem) throw new PkgForgeError(ErrorCode.invalidName, problem);
  return { platform, arch };
}

async function make(config: Config, platform: string, arch: string, opts: BuildRootOptions): Promise<BuildRoot> {
  const mirror = await mirrorFor(config, opts);
  process.stderr.write(`Making the build root of ${platform}/${arch} from ${mirror} with mmdebstrap\n`);
  const made = await makeBuildRoot({ dir: config.buildroots, platform, arch, mirror, output: process.stderr });
  console.log(`Made ${describeBuildRoot(made)}`);
  return made;
}

/** Every build root kept in the directory, from the tarballs' names. */
async function allBuildRoots(dir: string): Promise<BuildRoot[]> {
  const found: BuildRoot[] = [];
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    const m = name.match(/^([^.].*)-([^-]+)\.tar\.zst$/);
    if (!m) continue;
    const b = await findBuildRoot(dir, m[1]!, m[2]!);
    if (b) found.push(b);
  }
  return found;
}

export function registerBuildRootCommands(program: Command): void {
  const cmd = program
    .command('buildroot')
    .description("Debian platforms' build roots (mmdebstrap tarballs that sbuild builds in)");
  const common = (c: Command) =>
    c
      .option('-a, --arch <arch>', 'the architecture (default: this host’s)')
      .option('-m, --mirror <url>', 'the Debian mirror (default: debian_mirror, else this host’s apt mirror)')
      .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect);
  common(cmd.command('create').argument('<platform>', 'a Debian platform, e.g. deb12'))
    .description('make the build root of a platform, once')
    .action(async (platform: string, opts: BuildRootOptions) => {
      const config = configFor(['buildd.yml'], opts);
      const t = target(platform, opts);
      const existing = await findBuildRoot(config.buildroots, t.platform, t.arch);
      if (existing)
        throw new PkgForgeError(
          ErrorCode.exists,
          `The build root of ${t.platform}/${t.arch} exists (${existing.file}); \`pkgforge buildroot update ${t.platform}\` remakes it`,
        );
      await make(config, t.platform, t.arch, opts);
    });
  common(cmd.command('update').argument('[platform]', 'a Debian platform (default: every build root there is)'))
    .description('remake a build root from the mirror (today’s packages), replacing it when done')
    .action(async (platform: string | undefined, opts: BuildRootOptions) => {
      const config = configFor(['buildd.yml'], opts);
      const todo = platform ? [target(platform, opts)] : await allBuildRoots(config.buildroots);
      if (todo.length === 0)
        throw new PkgForgeError(ErrorCode.buildRoot, `There are no build roots in ${config.buildroots}`);
      for (const t of todo) await make(config, t.platform, t.arch, opts);
    });
  cmd
    .command('list')
    .description('list the build roots')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions) => {
      const config = configFor(['buildd.yml'], opts);
      const roots = await allBuildRoots(config.buildroots);
      if (opts.json) return printJson(roots);
      if (roots.length === 0) return console.log(`There are no build roots in ${config.buildroots}`);
      for (const b of roots) console.log(describeBuildRoot(b));
    });
}
