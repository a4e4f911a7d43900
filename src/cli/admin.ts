import type { Command } from 'commander';
import { addBuilder, deleteBuilder, listBuilders } from '../registry/builders.ts';
import { addPlatform, changePlatform, listPlatforms, type PlatformChange } from '../registry/platforms.ts';
import { printable } from '../core/names.ts';
import { builderView } from '../core/builder-health.ts';
import { displayTime as time } from '../core/time.ts';
import { formatTable } from './table.ts';
import { PACKAGE_FAMILIES, type PackageFamily } from '../core/terms.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { collect, configFor, printJson, withRegistry, type CommonOptions } from './context.ts';

/** Resolves an action from any unique prefix, as the original's Text::Abbrev did. */
export function resolveAction(given: string | undefined, actions: readonly string[]): string {
  if (!given) throw new PkgForgeError(ErrorCode.usage, `You must specify an action from: ${actions.join(', ')}`);
  const exact = actions.find((a) => a === given);
  if (exact) return exact;
  const matches = actions.filter((a) => a.startsWith(given));
  if (matches.length === 1) return matches[0]!;
  throw new PkgForgeError(ErrorCode.usage, `Invalid action '${given}', select from: ${actions.join(', ')}`);
}

function required(value: string | undefined, option: string): string {
  if (!value) throw new PkgForgeError(ErrorCode.usage, `Missing '--${option}' which is required for this action`);
  return value;
}

interface PlatformOptions extends CommonOptions {
  name?: string;
  architecture?: string;
}

const PLATFORM_ACTIONS = ['activate', 'add', 'deactivate', 'list', 'setauto', 'unsetauto'] as const;
const PAST: Record<PlatformChange, string> = {
  activate: 'activated',
  deactivate: 'deactivated',
  setauto: 'set auto on',
  unsetauto: 'cleared auto on',
};

export function registerAdminCommands(program: Command): void {
  program
    .command('platform')
    .description(`manage platforms: ${PLATFORM_ACTIONS.join(', ')}`)
    .argument('[action]', PLATFORM_ACTIONS.join('|'))
    .option('-n, --name <name>', 'platform name (e.g. el9)')
    .option('-a, --architecture <arch>', 'platform architecture (e.g. x86_64)')
    .option(
      '-f, --family <family>',
      `add: what it builds, ${PACKAGE_FAMILIES.join(' or ')} (default: as its name says, deb12: deb)`,
    )
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (actionArg: string | undefined, opts: PlatformOptions & { family?: string }) => {
      const action = resolveAction(actionArg, PLATFORM_ACTIONS);
      const config = configFor(['registry.yml'], opts);
      await withRegistry(config, async ({ db }) => {
        if (action === 'list') {
          const platforms = await listPlatforms(db);
          if (opts.json) return printJson(platforms.map(({ id: _id, ...p }) => p));
          if (platforms.length === 0) return console.log('Currently there are no platforms registered');
          console.log(['Name', 'Architecture', 'Active', 'Auto', 'Family'].join('\t'));
          console.log('='.repeat(45));
          for (const p of platforms)
            console.log(`${p.name}\t${p.arch}\t\t${p.active ? 1 : 0}\t${p.auto ? 1 : 0}\t${p.family}`);
          return;
        }
        const name = required(opts.name, 'name');
        const arch = required(opts.architecture, 'architecture');
        if (opts.family !== undefined && !(PACKAGE_FAMILIES as readonly string[]).includes(opts.family))
          throw new PkgForgeError(
            ErrorCode.usage,
            `--family takes ${PACKAGE_FAMILIES.join(' or ')}, not '${printable(opts.family)}'`,
          );
        const family = opts.family as PackageFamily | undefined;
        const platform =
          action === 'add'
            ? await addPlatform(db, name, arch, family)
            : await changePlatform(db, name, arch, action as PlatformChange);
        if (opts.json)
          return printJson({
            name: platform.name,
            arch: platform.arch,
            active: platform.active,
            auto: platform.auto,
            family: platform.family,
          });
        console.log(
          action === 'add'
            ? `Successfully added ${name}/${arch} platform`
            : `Successfully ${PAST[action as PlatformChange]} ${name}/${arch} platform`,
        );
      });
    });

  const BUILDER_ACTIONS = ['add', 'delete', 'list'] as const;
  program
    .command('builder')
    .description(`manage builders: ${BUILDER_ACTIONS.join(', ')}`)
    .argument('[action]', BUILDER_ACTIONS.join('|'))
    .option('-n, --name <name>', 'builder name (e.g. bighost_el9)')
    .option('-p, --platform <name>', 'the platform it builds for')
    .option('-a, --architecture <arch>', "the platform's architecture")
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (actionArg: string | undefined, opts: PlatformOptions & { platform?: string }) => {
      const action = resolveAction(actionArg, BUILDER_ACTIONS);
      const config = configFor(['registry.yml'], opts);
      await withRegistry(config, async ({ db }) => {
        if (action === 'list') {
          const builders = await listBuilders(db);
          const now = Date.now();
          const views = builders.map((b) => ({
            ...builderView(b, now, config.web.healthyWithinMs),
            platformActive: b.platformActive,
          }));
          if (opts.json) return printJson(views);
          if (builders.length === 0) return console.log('Currently there are no builders registered');
          const rows = builders.map((b, i) => {
            const v = views[i]!;
            return [
              v.name,
              `${v.platform}/${v.arch}`,
              v.state + (v.unsandboxed ? ', UNSANDBOXED' : ''),
              // What a (remote) builder said of itself, escaped: it must not write to the terminal.
              v.host === null ? '-' : printable(v.host, 255),
              v.currentJob ? `${v.currentJob.id} (attempt ${v.currentJob.attempt})` : '-',
              time(b.lastHeartbeatAt),
              v.unableToBuild !== null
                ? printable(v.unableToBuild, 4096)
                : v.state === 'stopped'
                  ? `stopped at ${time(b.stoppedAt)}`
                  : '',
            ];
          });
          for (const l of formatTable(
            ['BUILDER', 'PLATFORM', 'STATE', 'HOST', 'BUILDING', 'LAST HEARTBEAT', 'NOTE'],
            rows,
          ))
            console.log(l);
          return;
        }
        const name = required(opts.name, 'name');
        if (action === 'delete') {
          await deleteBuilder(db, name);
          return opts.json ? printJson({ deleted: name }) : console.log(`Successfully deleted builder '${name}'`);
        }
        const platform = required(opts.platform, 'platform');
        const arch = required(opts.architecture, 'architecture');
        const builder = await addBuilder(db, name, platform, arch);
        if (!builder.platformActive)
          console.error(`Warning: the platform '${platform}/${arch}' is not currently active`);
        if (opts.json) return printJson({ name, platform, arch, platformActive: builder.platformActive });
        console.log(`Successfully added builder '${name}' for platform ${platform}/${arch}`);
      });
    });
}
