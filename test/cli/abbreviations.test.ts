import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { expandAbbreviations } from '../../src/cli/abbreviations.ts';

describe('long options may be abbreviated to a unique prefix', () => {
  const program = new Command('pkgforge');
  program.command('submit').option('--platforms <p>').option('--archs <a>').option('--report <r>').option('--json');
  program.command('platform').option('--name <n>').option('--architecture <a>');
  const expand = (...args: string[]) => expandAbbreviations(program, ['node', 'pkgforge', ...args]).slice(2);

  it('expands a unique prefix, with or without =', () => {
    assert.deepEqual(expand('submit', '--plat', 'el9', '--arch=x86_64', 'a.src.rpm'), [
      'submit',
      '--platforms',
      'el9',
      '--archs=x86_64',
      'a.src.rpm',
    ]);
    assert.deepEqual(expand('platform', '--arch', 'x86_64'), ['platform', '--architecture', 'x86_64']);
  });
  it('leaves exact, ambiguous and unknown options alone, and everything after --', () => {
    const p2 = new Command('x');
    p2.command('c').option('--report <r>').option('--reason <r>');
    assert.deepEqual(expandAbbreviations(p2, ['n', 's', 'c', '--re', 'x']).slice(2), ['c', '--re', 'x']);
    assert.deepEqual(expand('submit', '--json', '--nope', '--', '--plat'), [
      'submit',
      '--json',
      '--nope',
      '--',
      '--plat',
    ]);
  });
});
