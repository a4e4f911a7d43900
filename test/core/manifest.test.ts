import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { parseManifest, serialiseManifest } from '../../src/core/manifest.ts';
import { generateJobId, jobIdProblem, isEmailAddress } from '../../src/core/names.ts';
import { ErrorCode, type PkgForgeError } from '../../src/util/errors.ts';

const SHA1 = 'a'.repeat(40);
const SHA256 = 'b'.repeat(64);
const pkg = (file: string, extra: Record<string, unknown> = {}) => ({
  file,
  type: 'SRPM',
  size: 10,
  sha1sum: SHA1,
  sha256sum: SHA256,
  ...extra,
});
const yamlOf = (o: Record<string, unknown>) =>
  YAML.stringify({ id: 'job1', bucket: 'devel', packages: [pkg('a-1-1.src.rpm')], ...o });

function rejects(text: string, pattern: RegExp) {
  assert.throws(
    () => parseManifest(text, 'incoming/x/build.yml'),
    (err: Error) => {
      assert.match(err.message, /^incoming\/x\/build\.yml: /);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('manifest', () => {
  it('round-trips through build.yml with sorted keys and both checksums', () => {
    const m = parseManifest(yamlOf({ platforms: 'el9, !el8', report: 'a@example.org, b@example.com' }), 'build.yml');
    assert.deepEqual(m.platforms, ['el9', '!el8']);
    assert.deepEqual(m.archs, ['all']);
    assert.deepEqual(m.report, ['a@example.org', 'b@example.com']);
    assert.equal(m.size, 10);
    const text = serialiseManifest(m);
    assert.deepEqual(Object.keys(YAML.parse(text)), [
      'archs',
      'bucket',
      'id',
      'packages',
      'platforms',
      'report',
      'size',
      'submitter',
      'subtime',
    ]);
    assert.deepEqual(parseManifest(text, 'again'), m);
  });

  it("keeps a .dsc's parts, counts them in the job's size, and round-trips them", () => {
    const part = (file: string) => ({ file, size: 7, sha256sum: SHA256 });
    const m = parseManifest(
      yamlOf({
        packages: [pkg('x_1-1.dsc', { type: 'DSC', parts: [part('x_1.orig.tar.gz'), part('x_1-1.debian.tar.xz')] })],
      }),
      'build.yml',
    );
    assert.equal(m.size, 24);
    assert.deepEqual(
      m.packages[0]!.parts?.map((p) => p.file),
      ['x_1.orig.tar.gz', 'x_1-1.debian.tar.xz'],
    );
    assert.deepEqual(parseManifest(serialiseManifest(m), 'again'), m);
  });

  it('refuses a job mixing source kinds, parts on an SRPM, and unsafe or twin part names', () => {
    const part = (file: string) => ({ file, size: 7, sha256sum: SHA256 });
    rejects(
      yamlOf({ packages: [pkg('a-1-1.src.rpm'), pkg('x_1-1.dsc', { type: 'DSC' })] }),
      /a job holds one kind of source package, and this one mixes SRPM and DSC/,
    );
    rejects(
      yamlOf({ packages: [pkg('a-1-1.src.rpm', { parts: [part('a.tar.gz')] })] }),
      /is of type SRPM, which has no parts/,
    );
    const unsafe = (file: string, pattern: RegExp) =>
      assert.throws(
        () => parseManifest(yamlOf({ packages: [pkg('x_1-1.dsc', { type: 'DSC', parts: [part(file)] })] }), 'm'),
        (err: PkgForgeError) => err.code === ErrorCode.unsafePath && pattern.test(err.message),
      );
    unsafe('../x.tar.gz', /package file '\.\.\/x\.tar\.gz': the file name contains a path/);
    unsafe('-x.tar.gz', /the file name cannot start with a dash/);
    unsafe('build.yml', /is the name of the job's manifest/);
    unsafe('x_1-1.dsc', /is listed twice/);
  });

  it('accepts a manifest with only sha1sum, as the original wrote', () => {
    const m = parseManifest(
      yamlOf({ packages: [{ file: 'a-1-1.src.rpm', type: 'SRPM', size: 3, sha1sum: SHA1 }] }),
      'build.yml',
    );
    assert.equal(m.packages[0]!.sha256sum, undefined);
  });

  it("reads the original client's style (document marker, ~ for null, platforms as a list)", () => {
    const text = `--- \narchs: \n  - all\nbucket: lcfg\nid: i8Mq2Q0nRaG171vp1FpLxw\npackages: \n  - file: foo-1-2.src.rpm\n    sha1sum: 3f786850e387550fdab836ed7e6dc881de23001b\n    size: 123456\n    type: SRPM\nplatforms: \n  - auto\nreport: ~\nsize: 123456\nsubmitter: user1\nsubtime: ~\n`;
    const m = parseManifest(text, 'build.yml');
    assert.equal(m.id, 'i8Mq2Q0nRaG171vp1FpLxw');
    assert.deepEqual(m.report, []);
  });

  it('names the line and column of malformed YAML', () =>
    rejects('id: job1\nbucket: [devel\n', /malformed YAML.*line \d+, column \d+/));
  it('refuses aliases, so an alias bomb cannot expand', () =>
    rejects(
      'a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nid: j\nbucket: d\npackages: []\n',
      /aliases/,
    ));
  it('refuses duplicate keys', () => rejects('id: a\nid: b\nbucket: d\npackages: []\n', /the key 'id' appears twice/));
  it('refuses a document that is not a mapping', () => rejects('- just\n- a list\n', /mapping/));
  it('refuses an empty document', () => rejects('', /empty/));
  it('refuses wrong types', () => rejects(yamlOf({ packages: 'a.src.rpm' }), /packages/));
  it('refuses a missing bucket', () => rejects(YAML.stringify({ id: 'j', packages: [pkg('a.src.rpm')] }), /bucket/));
  it('refuses zero packages', () => rejects(yamlOf({ packages: [] }), /no packages/));
  it('refuses a file name with a path', () => rejects(yamlOf({ packages: [pkg('../../etc/passwd')] }), /path/));
  it('refuses a file name of ..', () => rejects(yamlOf({ packages: [pkg('..')] }), /cannot be '\.\.'/));
  it('refuses a file name with a NUL byte', () => rejects(yamlOf({ packages: [pkg('a\0.src.rpm')] }), /NUL/));
  it('refuses duplicate file names', () =>
    rejects(yamlOf({ packages: [pkg('a.src.rpm'), pkg('a.src.rpm')] }), /listed twice/));
  it('refuses unknown package types', () =>
    rejects(yamlOf({ packages: [pkg('a.tar.gz', { type: 'TARBALL' })] }), /not supported/));
  it('refuses a malformed checksum', () =>
    rejects(yamlOf({ packages: [pkg('a.src.rpm', { sha1sum: 'xyz' })] }), /sha1sum/));
  it('refuses an id of 51 characters', () => rejects(yamlOf({ id: 'x'.repeat(51) }), /51 characters/));
  it('refuses an id with a slash', () => rejects(yamlOf({ id: 'a/b' }), /may only contain/));
  it("refuses an id starting with a dot, which could name PkgForge's own files", () =>
    rejects(yamlOf({ id: '.staging-x' }), /must not start with a dot/));
  it('refuses a size beyond what the registry can store', () =>
    rejects(yamlOf({ packages: [pkg('a.src.rpm', { size: 1e19 })] }), /size/));
  it('finds duplicate keys nested in packages', () =>
    rejects('id: j\nbucket: d\npackages:\n  - file: a.src.rpm\n    file: b.src.rpm\n', /the key 'file' appears twice/));
  it('refuses a report address that is not an address', () =>
    rejects(yamlOf({ report: ['not an address'] }), /e-mail/));
  it('refuses a bucket that could become a path', () => rejects(yamlOf({ bucket: '../x' }), /bucket/));
  it('refuses a platform filter with odd characters', () =>
    rejects(yamlOf({ platforms: ['el9; rm -rf'] }), /platform/));
  it('names the file once in the message for a duplicate key', () =>
    assert.throws(
      () => parseManifest('id: a\nid: b\nbucket: d\npackages: []\n', 'incoming/x/build.yml'),
      (err: Error) => {
        assert.equal(err.message, "incoming/x/build.yml: malformed YAML: the key 'id' appears twice in one mapping");
        return true;
      },
    ));
  it('does not take a duplicate key named alias for a YAML alias', () =>
    rejects('alias: a\nalias: b\n', /the key 'alias' appears twice/));

  const refusesName = (file: string | string[], pattern: RegExp) =>
    assert.throws(
      () => parseManifest(yamlOf({ packages: [file].flat().map((f) => pkg(f)) }), 'incoming/x/build.yml'),
      (err: PkgForgeError) => {
        assert.match(err.message, /^incoming\/x\/build\.yml: /);
        assert.match(err.message, pattern);
        // A different code from a malformed manifest's: the incoming processor refuses it at once.
        assert.equal(err.code, ErrorCode.unsafePath);
        return true;
      },
    );
  it('refuses a file name with a right-to-left override, printing it escaped', () =>
    refusesName(
      'hello\u202egpj.src.rpm',
      /package file 'hello\\u202egpj\.src\.rpm': .*invisible or text-direction character \\u202e/,
    ));
  it('refuses a file name with a C1 control', () => refusesName('a\u009b.src.rpm', /\\x9b/));
  it('refuses a file name with a zero-width space', () => refusesName('a\u200b.src.rpm', /\\u200b/));
  it('refuses file names that are the same once Unicode is normalised', () =>
    refusesName(['caf\u00e9-1-1.src.rpm', 'cafe\u0301-1-1.src.rpm'], /differ only in their Unicode form/));
  it("refuses a package named build.yml, the manifest's own name", () =>
    refusesName('build.yml', /build\.yml is the name of the job's manifest/));
  it('refuses a package named build.yml in full-width letters', () =>
    refusesName('\uff42uild.yml', /build\.yml is the name of the job's manifest/));

  const address = (i: number, length = 20) => `${'a'.repeat(length - 14)}${String(i).padStart(2, '0')}@example.org`;
  it('refuses more report addresses than a job may have, also given as one comma-separated string', () => {
    rejects(
      yamlOf({ report: Array.from({ length: 70_000 }, (_, i) => `u${i}@b.io`).join(',') }),
      /report: 70000 addresses, at most 20/,
    );
    rejects(yamlOf({ report: Array.from({ length: 21 }, (_, i) => address(i)) }), /report: 21 addresses, at most 20/);
    assert.equal(
      parseManifest(yamlOf({ report: Array.from({ length: 20 }, (_, i) => address(i)) }), 'x').report.length,
      20,
    );
  });
  it('refuses report addresses longer than 2000 characters together', () =>
    rejects(
      yamlOf({ report: Array.from({ length: 19 }, (_, i) => address(i, 106)) }),
      /report: the addresses are 2014 characters long together, at most 2000/,
    ));

  it('refuses an oversized manifest before parsing it', () =>
    rejects(`id: j\nbucket: d\n#${'x'.repeat(1024 * 1024)}\n`, /larger than/));

  it('generates ids that are always valid (never a leading dash)', () => {
    for (let i = 0; i < 2000; i++) assert.equal(jobIdProblem(generateJobId()), null);
  });

  it('checks job ids and addresses', () => {
    assert.equal(jobIdProblem('x'.repeat(50)), null);
    assert.match(jobIdProblem('x'.repeat(51))!, /at most 50/);
    assert.equal(jobIdProblem('a.b_c-d'), null);
    assert.ok(isEmailAddress('user+tag@example.org'));
    assert.ok(!isEmailAddress('user@localhost'));
    assert.ok(!isEmailAddress('a@b@c.org'));
  });
});
