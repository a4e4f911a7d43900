import { Command, CommanderError } from 'commander';
import { isPkgForgeError, messageOf } from '../util/errors.ts';
import { expandAbbreviations } from './abbreviations.ts';
import { registerAdminCommands } from './admin.ts';
import { registerBuilddCommand } from './buildd.ts';
import { registerLogsCommand } from './logs.ts';
import { registerSteerCommands } from './steer.ts';
import { registerIncomingCommand } from './incoming.ts';
import { registerInitCommand } from './init.ts';
import { registerJobCommands } from './jobs.ts';
import { registerServeCommand } from './serve.ts';
import { registerSubmitCommand } from './submit.ts';

const program = new Command('pkgforge')
  .description('PkgForge: a build farm for source packages')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerSubmitCommand(program);
registerIncomingCommand(program);
registerJobCommands(program);
registerBuilddCommand(program);
registerSteerCommands(program);
registerLogsCommand(program);
registerAdminCommands(program);
registerInitCommand(program);
registerServeCommand(program);

try {
  await program.parseAsync(expandAbbreviations(program, process.argv));
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else {
    // Errors are for people: the message, no stack trace (PKGFORGE_DEBUG=1 shows it).
    const prefix = isPkgForgeError(err) ? '' : 'unexpected error: ';
    process.stderr.write(`pkgforge: ${prefix}${messageOf(err)}\n`);
    if (process.env.PKGFORGE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
