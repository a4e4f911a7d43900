import { randomBytes } from 'node:crypto';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';

/** A job id: the original's characters, but never a leading dot or dash (those name PkgForge's own files). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
export const JOB_ID_MAX_LENGTH = 50;

/** Why a job id is unacceptable, or null when it is fine. */
export function jobIdProblem(id: string): string | null {
  if (id.length === 0) return 'the job id is empty';
  if (id.length > JOB_ID_MAX_LENGTH)
    return `the job id is ${id.length} characters long, at most ${JOB_ID_MAX_LENGTH} are allowed`;
  if (!JOB_ID_PATTERN.test(id))
    return 'the job id may only contain the characters A-Z a-z 0-9 _ . - and must not start with a dot or a dash';
  if (id === '.' || id === '..') return `the job id cannot be '${id}'`;
  return null;
}

export function assertJobId(id: string): void {
  const problem = jobIdProblem(id);
  if (problem) throw new PkgForgeError(ErrorCode.invalidName, `Invalid job id '${printable(id)}': ${problem}`);
}

/**
 * A platform name: no dash, so results/<job>/<platform>-<arch>/ and mock's <platform>-<bucket>-<arch>
 * name one platform and arch only.
 */
const PLATFORM_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+]{0,19}$/;
const ARCH_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,19}$/;
const BUILDER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,49}$/;
/** A token's user: a login or an address, as a submitter is recorded. */
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,49}$/;

/** Why a platform name is unacceptable, or null. */
export function platformNameProblem(name: string): string | null {
  return PLATFORM_NAME.test(name) ? null : 'the name may only contain A-Z a-z 0-9 _ . + (at most 20 characters)';
}

/** Why an architecture name is unacceptable, or null. */
export function archNameProblem(arch: string): string | null {
  return ARCH_NAME.test(arch) ? null : 'the architecture may only contain A-Z a-z 0-9 _ . + - (at most 20 characters)';
}

/** Why a builder name is unacceptable, or null. */
export function builderNameProblem(name: string): string | null {
  return BUILDER_NAME.test(name) ? null : 'names may only contain A-Z a-z 0-9 _ . - (at most 50 characters)';
}

/** Why a user name (of an API token) is unacceptable, or null. */
export function userNameProblem(name: string): string | null {
  return USER_NAME.test(name) ? null : 'user names may only contain A-Z a-z 0-9 _ . @ - (at most 50 characters)';
}

/** A new job id: 128 random bits, base64url (22 characters), as the original's UUIDs. */
export function generateJobId(): string {
  // base64url may start with '-', which ids may not (it would read as an option); draw again.
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * Characters that are invisible or change how the text around them is shown: controls (C0, DEL,
 * C1), format characters (bidirectional overrides and isolates U+202A–U+202E and U+2066–U+2069,
 * zero-width spaces and joiners U+200B–U+200F, the byte order mark U+FEFF, soft hyphens, tags),
 * the line and paragraph separators U+2028 and U+2029, and unpaired surrogates. Printed raw, they
 * make `hello\u202egpj.src.rpm` show as `hellompr.crs.jpg`.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, 'gu');

/** Why a source package file name is unsafe, or null. The name must be a bare name inside the job directory. */
export function fileNameProblem(name: string): string | null {
  if (name.length === 0) return 'the file name is empty';
  if (name.includes('\0')) return 'the file name contains a NUL byte';
  if (name.includes('/') || name.includes('\\'))
    return 'the file name contains a path; only a bare file name is allowed';
  if (name === '.' || name === '..') return `the file name cannot be '${name}'`;
  if (name.startsWith('.')) return 'the file name cannot start with a dot';
  if (Buffer.byteLength(name) > 255) return 'the file name is longer than 255 bytes';
  const invisible = INVISIBLE.exec(name);
  if (invisible)
    return `the file name contains the invisible or text-direction character ${escapeCharacter(invisible[0])}, which would make it print as another name`;
  return null;
}

/**
 * The form in which two file names are the same name: Unicode compatibility normalisation (NFKC),
 * so that `café` written precomposed (NFC) and decomposed (NFD), or with a ligature, are one name.
 */
export function fileNameKey(name: string): string {
  return name.normalize('NFKC');
}

/** Why a list of file names cannot be one job's (two are the same name, or the same once normalised), or null. */
export function fileNamesProblem(names: readonly string[]): string | null {
  const seen = new Map<string, string>();
  for (const name of names) {
    const key = fileNameKey(name);
    const other = seen.get(key);
    if (other === name)
      return `the file name '${printable(name)}' is listed twice; file names within a job must differ`;
    if (other !== undefined)
      return `the file names '${printable(other)}' and '${printable(name)}' differ only in their Unicode form (NFC/NFD or compatibility characters) and would look the same; file names within a job must differ`;
    seen.set(key, name);
  }
  return null;
}

/** A bucket, platform or arch name that can safely become part of a path. */
export const SAFE_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;

const EMAIL_PATTERN =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Whether a report address is a plain e-mail address we are willing to send to. */
export function isEmailAddress(address: string): boolean {
  return address.length <= 254 && EMAIL_PATTERN.test(address) && !address.startsWith('.') && !address.includes('..');
}

/** A string made safe to print in a message: invisible and text-direction characters escaped, length bounded. */
/**
 * A reason as the registry keeps it: NUL, which PostgreSQL's text cannot hold (a build's output, a
 * remote builder's report may carry one), becomes U+FFFD; the rest is kept as it was.
 */
export function storableText(s: string): string;
export function storableText(s: string | null): string | null;
export function storableText(s: string | null): string | null {
  return s === null ? null : s.replaceAll('\0', '\uFFFD');
}

export function printable(s: string, max = 120): string {
  const escaped = s.replace(INVISIBLE_ALL, escapeCharacter);
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}

/** `\x1b`, `\u202e`, `\u{e0041}`: a character as a JavaScript-style escape. */
function escapeCharacter(c: string): string {
  const code = c.codePointAt(0)!;
  const hex = code.toString(16);
  if (code < 0x100) return `\\x${hex.padStart(2, '0')}`;
  return code > 0xffff ? `\\u{${hex}}` : `\\u${hex.padStart(4, '0')}`;
}

/** Splits list options the original's way: every element on commas, blanks dropped. */
export function splitList(values: string | readonly string[] | null | undefined): string[] {
  if (values === null || values === undefined) return [];
  const list = typeof values === 'string' ? [values] : values;
  return list
    .flatMap((v) => String(v).split(/\s*,\s*/))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}
