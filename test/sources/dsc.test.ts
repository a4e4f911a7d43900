import assert from 'node:assert/strict';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { parseDeb822 } from '../../src/sources/deb822.ts';
import { DSC_MAX_BYTES, validateDsc } from '../../src/sources/dsc.ts';
import { buildDsc, clearsign, makeSigningKey } from '../helpers/dsc.ts';
import { digest } from '../helpers/jobs.ts';

describe('deb822, as .dsc files use it', () => {
  it('reads fields case-insensitively, joins continuation lines and reads " ." as an empty line', () => {
    const { paragraphs, signature } = parseDeb822('Source: x\nDescription: first\n second\n .\n third\n\nOther: y\n');
    assert.equal(signature, null);
    assert.equal(paragraphs.length, 2);
    assert.equal(paragraphs[0]!.get('source'), 'x');
    assert.equal(paragraphs[0]!.get('DESCRIPTION'), 'first\nsecond\n\nthird');
    assert.deepEqual(paragraphs[0]!.names(), ['Source', 'Description']);
    assert.equal(paragraphs[1]!.get('Other'), 'y');
  });

  it('refuses a repeated field, a continuation with no field, and a line that is not a field, naming the line', () => {
    assert.throws(() => parseDeb822('Source: x\nsource: y\n'), /the field source appears twice/);
    assert.throws(() => parseDeb822(' dangling\n'), /line 1: a continuation line with no field/);
    assert.throws(() => parseDeb822('Source: x\nno colon here\n'), /line 2: not a 'Field: value' line/);
    assert.throws(() => parseDeb822('Source: x\n-----BEGIN PGP SIGNATURE-----\n'), /armour block is not where/);
  });
});

describe('Debian source packages (.dsc) are validated by reading them', () => {
  it('reads a real .dsc made by dpkg-source: its name, version, files and their SHA-256', async () => {
    const dsc = buildDsc('tiny', { version: '2:1.5-3', buildDepends: 'debhelper-compat (= 13), zlib1g-dev' });
    const info = await validateDsc(dsc);
    assert.deepEqual(
      { ...info, parts: undefined },
      {
        name: 'tiny',
        version: '2:1.5',
        release: '3',
        format: '3.0 (quilt)',
        architectures: ['all'],
        buildRequires: ['debhelper-compat (= 13)', 'zlib1g-dev'],
        parts: undefined,
        signed: false,
      },
    );
    // The listed files are the ones dpkg-source wrote beside it, by their real sizes and digests.
    assert.deepEqual(
      info.parts.map((p) => p.file),
      ['tiny_1.5.orig.tar.gz', 'tiny_1.5-3.debian.tar.xz'],
    );
    for (const p of info.parts) {
      const path = join(dirname(dsc), p.file);
      assert.equal(p.size, statSync(path).size);
      assert.equal(p.sha256sum, digest(path, 'sha256'));
    }
  });

  it('reads a clearsigned .dsc through its armour, and says it is signed', async () => {
    const dsc = buildDsc('signed');
    const key = makeSigningKey();
    const copy = join(dirname(dsc), 'signed_1.0-1.signed.dsc');
    writeFileSync(copy, clearsign(dsc, key.home));
    assert.match(readFileSync(copy, 'utf8'), /^-----BEGIN PGP SIGNED MESSAGE-----/);
    const [plain, signed] = [await validateDsc(dsc), await validateDsc(copy)];
    assert.equal(signed.signed, true);
    assert.deepEqual({ ...signed, signed: false }, plain);
    // What follows the signature is not signed, so it is not read either.
    writeFileSync(copy, `${clearsign(dsc, key.home)}Files:\n 00 1 evil\n`);
    await assert.rejects(validateDsc(copy), /text after the signature is not signed/);
  });

  describe('hostile .dsc files are refused with the file and the reason', () => {
    const real = readFileSync(buildDsc('hostile'), 'utf8');
    const dir = mkdtempSync(join(tmpdir(), 'pkgforge-dsc-hostile-'));
    const sha = 'a'.repeat(64);
    const md5 = 'b'.repeat(32);
    /** The real .dsc with both file lists replaced by lines naming `names`. */
    const listing = (...names: string[]) =>
      real
        .replace(/Checksums-Sha256:\n( .*\n)+/, `Checksums-Sha256:\n${names.map((n) => ` ${sha} 10 ${n}\n`).join('')}`)
        .replace(/Files:\n( .*\n)+/, `Files:\n${names.map((n) => ` ${md5} 10 ${n}\n`).join('')}`);
    const cases: [string, string | Buffer, RegExp, string?][] = [
      ['a path', listing('../../etc/passwd'), /listed file '\.\.\/\.\.\/etc\/passwd': the file name contains a path/],
      ['a leading dash', listing('-rf'), /listed file '-rf': the file name cannot start with a dash/],
      ['a leading dot', listing('.bashrc'), /listed file '\.bashrc': the file name cannot start with a dot/],
      ['an invisible character', listing('x\u202egz.rat'), /invisible or text-direction character \\u202e/],
      ['the manifest', listing('build.yml'), /build\.yml is the name of the job's manifest/],
      ['itself', listing('bad.dsc'), /listed file 'bad\.dsc': it is the \.dsc itself/],
      [
        'a file listed twice',
        listing('twice.tar.gz', 'twice.tar.gz'),
        /its Checksums-Sha256 field lists 'twice\.tar\.gz' twice/,
      ],
      [
        'lists that disagree',
        real.replace(/(Checksums-Sha256:\n [0-9a-f]{64} )(\d+)/, (_m, a: string, n: string) => `${a}${Number(n) + 1}`),
        /Files and Checksums-Sha256 fields do not list the same files with the same sizes/,
      ],
      [
        'a Files list hiding a file behind a twin',
        real
          .replace(/Checksums-Sha256:\n( .*\n)+/, `Checksums-Sha256:\n ${sha} 3 a.tar.gz\n ${sha} 3 b.tar.gz\n`)
          .replace(/Files:\n( .*\n)+/, `Files:\n ${md5} 3 a.tar.gz\n ${md5} 3 a.tar.gz\n`),
        /its Files field lists 'a\.tar\.gz' twice/,
      ],
      ['a name dpkg refuses', listing('café.tar.gz'), /listed file 'café\.tar\.gz': dpkg takes only names of/],
      [
        'a bad revision',
        real.replace(/^Version: .*$/m, 'Version: 1.0-a:b'),
        /the Debian revision after the last - holds only/,
      ],
      [
        'an empty revision',
        real.replace(/^Version: .*$/m, 'Version: 1.0-'),
        /the Debian revision after the last - holds only/,
      ],
      [
        'a colon without an epoch',
        real.replace(/^Version: .*$/m, 'Version: 1.0:x-1'),
        /upstream version must start with a digit/,
      ],
      ['a byte-order mark', `\uFEFF${real}`, /it starts with a byte-order mark/],
      [
        'a paragraph hidden among armour headers',
        `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n \n${real}\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n`.replace(
          'Hash: SHA256\n \n',
          'Hash: SHA256\nSource: hidden\n \n',
        ),
        /line 3: not an armour header/,
      ],
      ['no SHA-256 list', real.replace(/Checksums-Sha256:\n( .*\n)+/, ''), /it has no Checksums-Sha256 field/],
      [
        'a malformed line',
        real.replace(/Files:\n /, 'Files:\n nonsense '),
        /Files field has a line that is not 'checksum size name'/,
      ],
      ['two paragraphs', `${real}\nSource: second\n`, /it has 2 paragraphs, a \.dsc has one/],
      [
        'a bad source name',
        real.replace(/^Source: .*$/m, 'Source: ../x'),
        /the source name '\.\.\/x' is not a Debian package name/,
      ],
      [
        'a bad version',
        real.replace(/^Version: .*$/m, 'Version: $(id)'),
        /the version '\$\(id\)' is not a Debian version/,
      ],
      ['binary junk', Buffer.from([0x46, 0x6f, 0x00, 0xff, 0xfe]), /it is not a text file/],
      ['too large', `${real}X-Padding: ${'x'.repeat(DSC_MAX_BYTES)}\n`, /it is larger than 1048576 bytes/],
      ['not a .dsc name', real, /the name of a Debian source package must end with \.dsc/, 'bad.txt'],
    ];
    const UNSAFE = new Set([
      'a path',
      'a leading dash',
      'a leading dot',
      'an invisible character',
      'the manifest',
      'itself',
      'a name dpkg refuses',
    ]);
    for (const [what, content, message, name = 'bad.dsc'] of cases) {
      it(`refuses ${what}`, async () => {
        const path = join(dir, name);
        writeFileSync(path, content);
        // Names that could reach outside the job are unsafe paths; anything else is a bad package.
        const code = UNSAFE.has(what) ? 'PKGF_ERR_UNSAFE_PATH' : 'PKGF_ERR_SOURCE_PACKAGE';
        await assert.rejects(validateDsc(path), (err: Error) => {
          assert.equal((err as { code?: string }).code, code, err.message);
          assert.match(err.message, new RegExp(`^${name.replace('.', '\\.')}: `));
          assert.match(err.message, message);
          return true;
        });
      });
    }

    it('reads a real U+FFFD in the text as text', async () => {
      const path = join(dir, 'replacement.dsc');
      writeFileSync(path, real.replace(/^Maintainer: .*$/m, 'Maintainer: R\uFFFDsum\u00e9 <r@example.org>'));
      assert.equal((await validateDsc(path)).name, 'hostile');
    });

    it('refuses a symbolic link and a missing file', async () => {
      const link = join(dir, 'link.dsc');
      symlinkSync(buildDsc('hostile'), link);
      await assert.rejects(validateDsc(link), /link\.dsc: the file is a symbolic link/);
      await assert.rejects(validateDsc(join(dir, 'missing.dsc')), /missing\.dsc: the file does not exist/);
    });
  });
});
