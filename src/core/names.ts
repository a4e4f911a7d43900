import { randomBytes } from 'node:crypto';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';

/** A job id: the original's characters, but never a leading dot or dash (those name PkgForge's own files). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
export const JOB_ID_MAX_LENGTH = 50;

/** Why a job id is unacceptable, or null when it is fine. */
export function jobIdProblem(id: string): string | null {
  if (id.length === 0) return 'the job id is empty';
  if (id.length > JOB_ID_MAX_LENGTH) return `the job id is ${id.length} characters long, at most ${JOB_ID_MAX_LENGTH} are allowed`;
  if (!JOB_ID_PATTERN.test(id)) return 'the job id may only contain the characters A-Z a-z 0-9 _ . - and must not start with a dot or a dash';
  if (id === '.' || id === '..') return `the job id cannot be '${id}'`;
  return null;
}

export function assertJobId(id: string): void {
  const problem = jobIdProblem(id);
  if (problem) throw new PkgForgeError(ErrorCode.jobId, `Invalid job id '${printable(id)}': ${problem}`);
}

/** A new job id: 128 random bits, base64url (22 characters), as the original's UUIDs. */
export function generateJobId(): string {
  // base64url may start with '-', which ids may not (it would read as an option); draw again.
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Why a source package file name is unsafe, or null. The name must be a bare name inside the job directory. */
export function fileNameProblem(name: string): string | null {
  if (name.length === 0) return 'the file name is empty';
  if (name.includes('\0')) return 'the file name contains a NUL byte';
  if (name.includes('/') || name.includes('\\')) return 'the file name contains a path; only a bare file name is allowed';
  if (name === '.' || name === '..') return `the file name cannot be '${name}'`;
  if (name.startsWith('.')) return 'the file name cannot start with a dot';
  if (Buffer.byteLength(name) > 255) return 'the file name is longer than 255 bytes';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'the file name contains control characters';
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

/** A string made safe to print in a message: control characters escaped, length bounded. */
export function printable(s: string, max = 120): string {
  // eslint-disable-next-line no-control-regex
  const escaped = s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}

/** Splits list options the original's way: every element on commas, blanks dropped. */
export function splitList(values: string | readonly string[] | null | undefined): string[] {
  if (values === null || values === undefined) return [];
  const list = typeof values === 'string' ? [values] : values;
  return list.flatMap((v) => String(v).split(/\s*,\s*/)).map((v) => v.trim()).filter((v) => v.length > 0);
}
