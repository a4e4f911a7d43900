import { Command, CommanderError } from 'commander';
import { isPkgForgeError, messageOf } from '../util/errors.ts';
import { expandAbbreviations } from './abbreviations.ts';

const program = new Command('pkgforge')
  .description('PkgForge: a build farm for source packages')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

type Register = (program: Command) => void;
/** Each command group is loaded only when it runs, so `pkgforge submit` starts without the registry's drivers. */
const commandGroups: [string[], () => Promise<Register[]>][] = [
  [['submit'], async () => [(await import('./submit.ts')).registerSubmitCommand]],
  [['incoming'], async () => [(await import('./incoming.ts')).registerIncomingCommand]],
  [['jobs', 'job'], async () => [(await import('./jobs.ts')).registerJobCommands]],
  [['buildd'], async () => [(await import('./buildd.ts')).registerBuilddCommand]],
  [['cancel', 'retry'], async () => [(await import('./steer.ts')).registerSteerCommands]],
  [['logs'], async () => [(await import('./logs.ts')).registerLogsCommand]],
  [['platform', 'builder'], async () => [(await import('./admin.ts')).registerAdminCommands]],
  [['init'], async () => [(await import('./init.ts')).registerInitCommand]],
  [['serve'], async () => [(await import('./serve.ts')).registerServeCommand]],
  [['web'], async () => [(await import('./web.ts')).registerWebCommand]],
  [['token'], async () => [(await import('./token.ts')).registerTokenCommands]],
  [['buildroot'], async () => [(await import('./buildroot.ts')).registerBuildRootCommands]],
  [['key'], async () => [(await import('./key.ts')).registerKeyCommands]],
  [['repo'], async () => [(await import('./repo.ts')).registerRepoCommands]],
];

const wanted = process.argv[2];
const group = commandGroups.find(([names]) => wanted !== undefined && names.includes(wanted));
// `--version` needs no command; help and anything unknown list them all.
const needed = group ? [group] : wanted === '--version' || wanted === '-V' ? [] : commandGroups;
for (const [, load] of needed) for (const register of await load()) register(program);

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
