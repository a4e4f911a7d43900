import type { FileHandle } from 'node:fs/promises';
import { MANIFEST_FILE } from '../core/manifest.ts';
import { fileNameKey, fileNameProblem, fileNamesProblem, printable } from '../core/names.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { Deb822Error, parseDeb822 } from './deb822.ts';
import { withSourceFile } from './source-file.ts';

/** A `.dsc` larger than this is refused unread (GNU hello's is 1.9 KiB; the largest in Debian are a few hundred KiB). */
export const DSC_MAX_BYTES = 1024 * 1024;
/** Files one `.dsc` may list (Debian's have two to a dozen: tarballs, their signatures, the debian part). */
export const DSC_MAX_FILES = 100;

/** A file a `.dsc` lists, with the size and SHA-256 it gives for it. */
export interface DscPart {
  file: string;
  size: number;
  sha256sum: string;
}

/** What a valid Debian source package's `.dsc` tells us. */
export interface DscInfo {
  /** `Source:`. */
  name: string;
  /** The version without its Debian revision (an epoch kept: `1:2.10`). */
  version: string;
  /** The Debian revision (`3` of `2.10-3`), empty for a native package. */
  release: string;
  format: string;
  /** `Architecture:` as listed (`any`, `all`, `amd64 arm64`, …). */
  architectures: string[];
  /** Build-Depends, Build-Depends-Arch and Build-Depends-Indep, one relation each. */
  buildRequires: string[];
  /** The files it lists, in its order: each must be in the job beside it, of this size and SHA-256. */
  parts: DscPart[];
  /** Whether it is clearsigned (the signature is checked only under a bucket's keyring policy). */
  signed: boolean;
}

/** Debian Policy §5.6.1 and §5.6.12: what a source name and a version may be made of. */
const SOURCE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** dpkg's own rule for the names a `.dsc` lists (Dpkg::Checksums): what it would refuse, we refuse first. */
const LISTED_NAME = /^[0-9a-zA-Z][-+:.,=0-9a-zA-Z_~]+$/;

/**
 * Debian Policy §5.6.12: `[epoch:]upstream[-revision]`. The upstream part starts with a digit and
 * may hold a hyphen only when a revision follows, a colon only when an epoch precedes; the revision
 * holds no hyphen or colon.
 */
export function debianVersionProblem(version: string): string | null {
  if (version.length > 100) return 'it is longer than 100 characters';
  const epoch = /^([0-9]+):/.exec(version);
  const rest = epoch ? version.slice(epoch[0].length) : version;
  const dash = rest.lastIndexOf('-');
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : null;
  const allowed = `A-Za-z0-9.+~${epoch ? ':' : ''}${revision !== null ? '-' : ''}`;
  if (!new RegExp(`^[0-9][${allowed}]*$`).test(upstream))
    return 'the upstream version must start with a digit and hold only A-Z a-z 0-9 . + ~ (- with a revision, : with an epoch)';
  if (revision !== null && !/^[A-Za-z0-9+.~]+$/.test(revision))
    return 'the Debian revision after the last - holds only A-Z a-z 0-9 + . ~';
  return null;
}

/**
 * Validates a `.dsc` by path: a regular file, not a link, within the size bound. See
 * validateDscHandle for what is checked.
 */
export async function validateDsc(path: string): Promise<DscInfo> {
  return withSourceFile(path, validateDscHandle);
}

/**
 * Validates a `.dsc` the caller has opened, named `file` in messages: at most DSC_MAX_BYTES, one
 * deb822 paragraph (clearsigned or not) with Format, Source, Version, Architecture and the files it
 * lists in both `Files` and `Checksums-Sha256`, with the same names and sizes in each. Every listed
 * name is a plain file name (no path, no leading dot or dash, nothing invisible), not the `.dsc`
 * itself, and each appears once. The listed files themselves are checked by whoever has them.
 */
export async function validateDscHandle(file: string, fh: FileHandle): Promise<DscInfo> {
  const fail = (reason: string) => new PkgForgeError(ErrorCode.sourcePackage, `${printable(file)}: ${reason}`);
  if (!file.endsWith('.dsc')) throw fail('the name of a Debian source package must end with .dsc');
  const buf = Buffer.alloc(DSC_MAX_BYTES + 1);
  let length = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
    length += bytesRead;
    if (bytesRead === 0 || length === buf.length) break;
  }
  if (length > DSC_MAX_BYTES) throw fail(`it is larger than ${DSC_MAX_BYTES} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf.subarray(0, length));
  } catch {
    throw fail('it is not a text file (invalid UTF-8)');
  }
  if (text.includes('\0')) throw fail('it is not a text file (a NUL byte)');
  if (text.startsWith('\uFEFF')) throw fail('it starts with a byte-order mark, which dpkg does not read');
  let doc;
  try {
    doc = parseDeb822(text);
  } catch (err) {
    if (err instanceof Deb822Error) throw fail(`not a valid .dsc: ${err.message}`);
    throw err;
  }
  if (doc.paragraphs.length !== 1)
    throw fail(`not a valid .dsc: it has ${doc.paragraphs.length} paragraphs, a .dsc has one`);
  const p = doc.paragraphs[0]!;
  const field = (name: string) => {
    const v = p.get(name)?.trim();
    if (!v) throw fail(`not a valid .dsc: it has no ${name} field`);
    return v;
  };
  const name = field('Source');
  if (!SOURCE_NAME.test(name) || name.length > 100)
    throw fail(`the source name '${printable(name)}' is not a Debian package name`);
  const fullVersion = field('Version');
  const versionProblem = debianVersionProblem(fullVersion);
  if (versionProblem) throw fail(`the version '${printable(fullVersion)}' is not a Debian version: ${versionProblem}`);
  const dash = fullVersion.lastIndexOf('-');
  const format = field('Format');
  const architectures = field('Architecture').split(/\s+/);
  const parts = listedFiles(field('Checksums-Sha256'), 'Checksums-Sha256', /^[0-9a-f]{64}$/, fail);
  const md5 = listedFiles(field('Files'), 'Files', /^[0-9a-f]{32}$/, fail);
  for (const [field, list] of [
    ['Checksums-Sha256', parts],
    ['Files', md5],
  ] as const) {
    const twin = list.find((x, i) => list.findIndex((y) => y.file === x.file) !== i);
    if (twin) throw fail(`its ${field} field lists '${printable(twin.file)}' twice`);
  }
  // The same files, each once, with the same sizes: compared both ways.
  const key = (x: DscPart) => `${x.file}\0${x.size}`;
  const bySha = new Set(parts.map(key));
  if (md5.length !== parts.length || md5.some((m) => !bySha.has(key(m))))
    throw fail('its Files and Checksums-Sha256 fields do not list the same files with the same sizes');
  for (const part of parts) {
    const problem =
      fileNameProblem(part.file) ??
      (part.file.startsWith('-') ? 'the file name cannot start with a dash' : null) ??
      (LISTED_NAME.test(part.file)
        ? null
        : 'dpkg takes only names of A-Z a-z 0-9 and - + : . , = _ ~, starting with a letter or digit') ??
      (fileNameKey(part.file) === fileNameKey(file) ? 'it is the .dsc itself' : null) ??
      (fileNameKey(part.file) === MANIFEST_FILE ? `${MANIFEST_FILE} is the name of the job's manifest` : null);
    if (problem)
      throw new PkgForgeError(
        ErrorCode.unsafePath,
        `${printable(file)}: listed file '${printable(part.file)}': ${problem}`,
      );
  }
  const twins = fileNamesProblem(parts.map((x) => x.file));
  if (twins) throw new PkgForgeError(ErrorCode.unsafePath, `${printable(file)}: ${twins}`);
  const buildRequires = ['Build-Depends', 'Build-Depends-Arch', 'Build-Depends-Indep'].flatMap((f) =>
    (p.get(f) ?? '')
      .split(',')
      .map((r) => r.replace(/\s+/g, ' ').trim())
      .filter((r) => r.length > 0),
  );
  return {
    name,
    version: dash > 0 ? fullVersion.slice(0, dash) : fullVersion,
    release: dash > 0 ? fullVersion.slice(dash + 1) : '',
    format,
    architectures,
    buildRequires,
    parts,
    signed: doc.signature !== null,
  };
}

/** The `checksum size name` lines of a Files or Checksums-* field (of a `.dsc`, or a `.changes`). */
export function listedFiles(
  value: string,
  field: string,
  checksum: RegExp,
  fail: (reason: string) => Error,
): DscPart[] {
  const lines = value.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw fail(`its ${field} field lists no files`);
  if (lines.length > DSC_MAX_FILES)
    throw fail(`its ${field} field lists ${lines.length} files, at most ${DSC_MAX_FILES} are allowed`);
  return lines.map((line) => {
    const [sum, size, name, ...rest] = line.trim().split(/\s+/);
    if (!sum || !size || !name || rest.length > 0 || !checksum.test(sum.toLowerCase()) || !/^[0-9]{1,15}$/.test(size))
      throw fail(`its ${field} field has a line that is not 'checksum size name': '${printable(line.trim())}'`);
    return { file: name, size: Number(size), sha256sum: sum.toLowerCase() };
  });
}
