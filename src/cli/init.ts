import type { Command } from 'commander';
import { collect, configFor, printJson, withRegistry, type CommonOptions } from './context.ts';
import { initialiseFarm } from '../config/initialise-farm.ts';

export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description(
      "create the directories and migrate the registry (on the embedded default, also register this host's platform)",
    )
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends to the default list)', collect)
    .option(
      '--system',
      'set up a system install instead: its users (pkgforge, pkgforge-web, pkgforge-buildd, pkgforge-build), directories, owners and modes (as root; idempotent)',
    )
    .option('--root <dir>', 'with --system: make the directories under this root (for a test or an image)', '/')
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions & { system?: boolean; root: string }) => {
      if (opts.system) {
        const { ensureSystemInstall } = await import('../config/system-install.ts');
        const changed = await ensureSystemInstall(opts.root);
        if (opts.json) return printJson({ changed });
        for (const c of changed) console.log(c);
        console.log(
          changed.length === 0
            ? 'The system install is as it should be; nothing changed.'
            : `Changed ${changed.length} thing${changed.length === 1 ? '' : 's'}.`,
        );
        console.log(
          'Next: set the registry in /etc/pkgforge/pkgforge.yml (PostgreSQL, see docs/postgresql.md) and run `pkgforge init` as its owner.',
        );
        return;
      }
      const config = configFor(['handlers.yml', 'incoming.yml'], opts);
      const report = await withRegistry(config, (registry) => initialiseFarm(config, registry));
      if (opts.json) return printJson(report);
      for (const [key, dir] of Object.entries(report.directories)) console.log(`${key.padEnd(9)} ${dir}`);
      console.log(`registry  ${report.registry}`);
      if (report.hostPlatform) console.log(`Registered this host's platform ${report.hostPlatform} (active, auto)`);
    });
}
