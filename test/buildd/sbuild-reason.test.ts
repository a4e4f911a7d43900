import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readSbuildFailure, sbuildReason } from '../../src/buildd/commands/sbuild-reason.ts';
import { hostAptMirror } from '../../src/config/apt-sources.ts';
import { debianSuite } from '../../src/core/debian-suites.ts';

/** The end of sbuild's output, as sbuild 0.85 writes it, with the summary fields given. */
const summary = (fields: Record<string, string>) =>
  [
    '+------------------------------------------------------------------------------+',
    '| Summary                                                                      |',
    '+------------------------------------------------------------------------------+',
    '',
    ...Object.entries(fields).map(([k, v]) => `${k}: ${v}`),
    '--------------------------------------------------------------------------------',
  ].join('\n');

describe("what a failed sbuild says about why, in a user's words", () => {
  it('names each build dependency apt could not install', () => {
    const output = [
      'The following packages have unmet dependencies:',
      ' sbuild-build-depends-main-dummy : Depends: libfoo-dev but it is not installable',
      '                                   Depends: bar (>= 2) but 1.0-1 is to be installed',
      'E: Unable to correct problems, you have held broken packages.',
      summary({ 'Fail-Stage': 'install-deps', Status: 'given-back' }),
    ].join('\n');
    const f = readSbuildFailure(output);
    assert.deepEqual(f.missing, ['libfoo-dev but it is not installable', 'bar (>= 2) but 1.0-1 is to be installed']);
    assert.equal(
      sbuildReason('x_1-1.dsc', f, 3),
      'x_1-1.dsc: missing build dependencies libfoo-dev but it is not installable; bar (>= 2) but 1.0-1 is to be installed',
    );
  });

  it("gives the build's own error line when the build failed, and sbuild's stage otherwise", () => {
    const build = [
      'make[1]: Entering directory',
      'hello.c:3:1: error: expected ‘;’ before ‘}’ token',
      'make[1]: *** [Makefile:10: hello.o] Error 1',
      'dh_auto_build: error: make -j2 returned exit code 2',
      '| Cleanup                                                                      |',
      'rm: error: something in cleanup',
      summary({ 'Fail-Stage': 'build', Status: 'attempted' }),
    ].join('\n');
    assert.equal(
      sbuildReason('x_1-1.dsc', readSbuildFailure(build), 2),
      'x_1-1.dsc: the build failed (sbuild stage build): dh_auto_build: error: make -j2 returned exit code 2',
    );
    assert.equal(
      sbuildReason('x_1-1.dsc', readSbuildFailure(summary({ 'Fail-Stage': 'create-session', Status: 'failed' })), 1),
      'x_1-1.dsc: sbuild failed at its stage create-session (failed)',
    );
    assert.equal(
      sbuildReason('x_1-1.dsc', readSbuildFailure('perl: cannot start'), 255),
      'x_1-1.dsc: sbuild failed with exit code 255',
    );
  });
});

describe('Debian releases and mirrors for build roots', () => {
  it('knows the suite of a numbered Debian platform, and says null for others', () => {
    assert.equal(debianSuite('deb12'), 'bookworm');
    assert.equal(debianSuite('debian13'), 'trixie');
    assert.equal(debianSuite('el9'), null);
    assert.equal(debianSuite('deb99'), null);
  });

  it("finds the host's mirror in apt's deb822 sources, past comments, security and disabled entries", () => {
    const etc = mkdtempSync(join(tmpdir(), 'pkgforge-apt-etc-'));
    mkdirSync(join(etc, 'sources.list.d'));
    writeFileSync(
      join(etc, 'sources.list.d', 'debian.sources'),
      [
        'Types: deb',
        '# a comment apt allows',
        'URIs: http://mirror.example.org/debian-security',
        'Suites: bookworm-security',
        'Components: main',
        '',
        'Types: deb',
        'URIs: http://old.example.org/debian',
        'Suites: bookworm',
        'Enabled: no',
        '',
        'Types: deb-src deb',
        'URIs: http://mirror.example.org/debian',
        'Suites: bookworm bookworm-updates',
        'Components: main',
        '',
      ].join('\n'),
    );
    return hostAptMirror(etc).then((m) => assert.equal(m, 'http://mirror.example.org/debian'));
  });

  it('reads one-line sources.list entries, and has none on a host without apt', async () => {
    const etc = mkdtempSync(join(tmpdir(), 'pkgforge-apt-etc-'));
    writeFileSync(
      join(etc, 'sources.list'),
      '# deb http://commented.example.org/debian bookworm main\ndeb [arch=amd64] http://one.example.org/debian bookworm main\n',
    );
    assert.equal(await hostAptMirror(etc), 'http://one.example.org/debian');
    assert.equal(await hostAptMirror(join(etc, 'none')), null);
  });
});
