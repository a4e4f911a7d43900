import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pkgforge, PROJECT_ROOT } from '../helpers/farm.ts';

/** The README's table of commands: each row's command words and every option it names. */
function readmeCommands(): { command: string[]; choices: string[]; options: string[]; row: string }[] {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Commands$/m)[1]!.split(/^## /m)[0]!;
  return section
    .split('\n')
    .filter((l) => l.startsWith('| `pkgforge '))
    .map((row) => {
      const usage = /^\| `pkgforge ([^`]+)`/.exec(row)![1]!;
      // The words before the first argument, choice or option: `job show ID` is `job show`.
      const command: string[] = [];
      for (const word of usage.split(' ')) {
        if (!/^[a-z][a-z-]*$/.test(word)) break;
        command.push(word);
      }
      // `buildroot create|update|list`: the choices may be subcommands, each with its own options.
      const next = usage.split(' ')[command.length] ?? '';
      const choices = /^[a-z|\\]+$/.test(next) && next.includes('|') ? next.split(/\\?\|/).filter(Boolean) : [];
      return { command, choices, options: [...new Set(row.match(/--[a-z][a-z-]*/g) ?? [])], row };
    });
}

/** The commands `pkgforge --help` lists. */
const listedCommands = (help: string) =>
  [...help.split(/^Commands:$/m)[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');

describe("the README's table of commands matches the program", () => {
  it('names every command the program has, and the program has every command and option the table names', async () => {
    const rows = readmeCommands();
    assert.ok(rows.length > 10, 'the table was found');
    const help = await pkgforge(['--help'], {});
    assert.equal(help.code, 0, help.stderr);
    const inTable = new Set(rows.map((r) => r.command[0]!));
    const missing = listedCommands(help.stdout).filter((c) => !inTable.has(c));
    assert.deepEqual(missing, [], 'commands missing from the README table');
    const helps = await Promise.all(
      rows.map(async (r) => {
        const own = await pkgforge([...r.command, '--help'], {});
        // A choice that is an argument, not a subcommand, prints the command's own help again.
        const subs = await Promise.all(r.choices.map((c) => pkgforge([...r.command, c, '--help'], {})));
        return { code: own.code, stderr: own.stderr, stdout: [own, ...subs].map((h) => h.stdout).join('\n') };
      }),
    );
    rows.forEach((r, i) => {
      const h = helps[i]!;
      assert.equal(h.code, 0, `pkgforge ${r.command.join(' ')} --help: ${h.stderr}`);
      const unknown = r.options.filter((o) => !new RegExp(`${o}\\b`).test(h.stdout));
      assert.deepEqual(
        unknown,
        [],
        `options the README gives \`pkgforge ${r.command.join(' ')}\` that its --help lacks:\n${r.row}`,
      );
    });
  });
});
