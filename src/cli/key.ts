import type { Command } from 'commander';
import { exportPublicKey, farmSigningKey } from '../buildd/signing-key.ts';
import { collect, configFor, type CommonOptions } from './context.ts';

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description("the farm's signing key, which signs its repositories");
  key
    .command('export')
    .description("print the farm's public key, ASCII-armoured (made on first use when none is configured)")
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .action(async (opts: CommonOptions) => {
      // Where build daemons find the key: their configuration, as they read it.
      const config = configFor(['buildd.yml'], opts);
      process.stdout.write(await exportPublicKey(await farmSigningKey(config.signing.gnupgHome, config.signing.key)));
    });
}
