import type { Command } from 'commander';
import { createBuilderToken, createToken, listTokens, revokeToken } from '../registry/tokens.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { collect, configFor, printJson, withRegistry, type CommonOptions } from './context.ts';

import { displayTime as time } from '../core/time.ts';

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('API tokens: writes over HTTP need one');
  token
    .command('create')
    .description('make a token for a user, or for a remote builder, and print it (it is shown only this once)')
    .option('-u, --user <name>', 'the user the token acts as (the submitter of jobs it uploads)')
    .option('-b, --builder <name>', "a builder token: it acts only for this builder's claims and attempts")
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions & { user?: string; builder?: string }) => {
      if (!opts.user === !opts.builder)
        throw new PkgForgeError(ErrorCode.usage, 'token create takes either --user NAME or --builder NAME');
      const made = await withRegistry(configFor(['registry.yml'], opts), ({ db }) =>
        opts.builder ? createBuilderToken(db, opts.builder) : createToken(db, opts.user!),
      );
      const who = opts.builder ? `builder ${opts.builder}` : opts.user!;
      if (opts.json)
        return printJson({
          id: made.id,
          user: opts.builder ?? opts.user,
          builder: opts.builder ?? null,
          token: made.token,
        });
      console.log(made.token);
      console.error(`Token ${made.id} for ${who}. Keep it: it cannot be shown again.`);
    });
  token
    .command('list')
    .description('list tokens (never the tokens themselves)')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions) => {
      const tokens = await withRegistry(configFor(['registry.yml'], opts), ({ db }) => listTokens(db));
      if (opts.json) return printJson(tokens);
      if (tokens.length === 0) return console.log('No tokens');
      for (const t of tokens)
        console.log(
          `${String(t.id).padEnd(5)} ${(t.builder ? `builder ${t.builder}` : t.user).padEnd(20)} created ${time(t.createdAt)}  last used ${time(t.lastUsedAt)}${t.revokedAt ? `  REVOKED ${time(t.revokedAt)}` : ''}`,
        );
    });
  token
    .command('revoke')
    .description('revoke a token')
    .argument('<id>', 'the token number (from token list)')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .action(async (id: string, opts: CommonOptions) => {
      if (!/^\d+$/.test(id)) throw new PkgForgeError(ErrorCode.usage, `'${id}' is not a token number`);
      await withRegistry(configFor(['registry.yml'], opts), ({ db }) => revokeToken(db, Number(id)));
      console.log(`Revoked token ${id}`);
    });
}
