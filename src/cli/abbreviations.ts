import type { Command } from 'commander';

/**
 * Expands unique prefixes of long options (`--plat` for `--platforms`), as the original's
 * Getopt::Long allowed and its users type. An ambiguous or unknown prefix is left for commander
 * to report.
 */
export function expandAbbreviations(program: Command, argv: string[]): string[] {
  const [node, script, ...args] = argv;
  let command: Command = program;
  const out: string[] = [];
  for (const [i, arg] of args.entries()) {
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const sub = command.commands.find((c) => c.name() === arg);
    if (sub && !arg.startsWith('-')) {
      command = sub;
      out.push(arg);
      continue;
    }
    if (!arg.startsWith('--') || arg.length < 3) {
      out.push(arg);
      continue;
    }
    const [name, ...value] = arg.split('=');
    const longs = command.options.map((o) => o.long).filter((l): l is string => !!l);
    const matches = longs.includes(name!) ? [name!] : longs.filter((l) => l.startsWith(name!));
    out.push(matches.length === 1 ? [matches[0], ...value].join('=') : arg);
  }
  return [node!, script!, ...out];
}
