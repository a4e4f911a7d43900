import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { validateSrpm } from '../../src/sources/srpm.ts';
import { buildRpm, specFor, srpm } from '../helpers/srpm.ts';

describe('SRPM validation reads the RPM header itself', () => {
  let good: string;
  let dir: string;
  before(() => {
    good = srpm('hello', { version: '2.5', buildRequires: ['make', 'gcc >= 4'] });
    dir = mkdtempSync(join(tmpdir(), 'pkgforge-srpm-'));
  });
  /** A copy of the good SRPM, changed by `mutate`, under `name`. */
  const variant = (name: string, mutate: (b: Buffer) => Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, mutate(readFileSync(good)));
    return path;
  };
  const rejects = async (path: string, pattern: RegExp) => {
    await assert.rejects(validateSrpm(path), (err: Error) => {
      assert.match(err.message, pattern);
      return true;
    });
  };

  it('reads name, version, release, BuildRequires and the spec file of a real SRPM', async () => {
    const info = await validateSrpm(good);
    assert.equal(info.name, 'hello');
    assert.equal(info.version, '2.5');
    assert.equal(info.release, '1');
    assert.equal(info.specFile, 'pkg.spec');
    assert.deepEqual(info.buildRequires.sort(), ['gcc', 'make']);
  });

  it('reads a header larger than the first block it reads', async () => {
    const long = srpm('verbose', {
      summary: `a package whose header is large ${'x'.repeat(200)}`,
      description: 'lorem ipsum dolor '.repeat(8000),
    });
    const info = await validateSrpm(long);
    assert.equal(info.name, 'verbose');
    assert.equal(info.specFile, 'pkg.spec');
  });

  it('rejects a binary RPM', async () => {
    const binary = join(dir, 'hello-1.0-1.src.rpm');
    copyFileSync(buildRpm(specFor('hello'), 'binary'), binary);
    await rejects(binary, /hello-1\.0-1\.src\.rpm: it is a binary RPM/);
  });
  it('rejects a text file named .src.rpm', async () => {
    const path = join(dir, 'fake-1-1.src.rpm');
    writeFileSync(path, 'this is not an rpm\n'.repeat(20));
    await rejects(path, /fake-1-1\.src\.rpm: not a valid RPM: it is not an RPM file/);
  });
  it('rejects an empty file', async () =>
    rejects(
      variant('empty-1-1.src.rpm', () => Buffer.alloc(0)),
      /truncated/,
    ));
  it('rejects a file cut inside the lead', async () =>
    rejects(
      variant('cut1-1-1.src.rpm', (b) => b.subarray(0, 50)),
      /truncated.*lead/,
    ));
  it('rejects a file cut inside the main header', async () =>
    rejects(
      variant('cut2-1-1.src.rpm', (b) => b.subarray(0, 1200)),
      /truncated/,
    ));
  it('rejects a corrupted header magic', async () =>
    rejects(
      variant('magic-1-1.src.rpm', (b) => {
        const c = Buffer.from(b);
        c[96] = 0;
        return c;
      }),
      /signature header has a bad magic/,
    ));
  it('rejects a header that claims absurd sizes', async () =>
    rejects(
      variant('huge-1-1.src.rpm', (b) => {
        const c = Buffer.from(b);
        c.writeUInt32BE(0x7fffffff, 96 + 12);
        return c;
      }),
      /more than/,
    ));
  it('rejects a name that does not end in .src.rpm', async () =>
    rejects(
      variant('hello.rpm', (b) => b),
      /must end with \.src\.rpm/,
    ));
  it('rejects a symbolic link', async () => {
    const link = join(dir, 'link-1-1.src.rpm');
    symlinkSync(good, link);
    await rejects(link, /symbolic link/);
  });
  it('rejects a missing file', async () => rejects(join(dir, 'missing-1-1.src.rpm'), /does not exist/));
});
