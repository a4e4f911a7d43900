import Type, { type Static } from 'typebox';
// typebox/schema checks JSON schemas without the whole Value toolkit (half the start-up cost).
import Schema from 'typebox/schema';
import YAML, { YAMLParseError } from 'yaml';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import {
  assertJobId,
  fileNameKey,
  fileNameProblem,
  fileNamesProblem,
  isEmailAddress,
  printable,
  SAFE_NAME_PATTERN,
  splitList,
} from './names.ts';
import { familyOfSource, SOURCE_TYPES, type PackageFamily, type SourceType } from './terms.ts';

/** The file name of a job's manifest, in incoming and in accepted. */
export const MANIFEST_FILE = 'build.yml';
/** A manifest larger than this is refused before it is parsed. */
export const MANIFEST_MAX_BYTES = 1024 * 1024;
const MAX_PACKAGES = 1000;
const MAX_FILTERS = 100;
/**
 * Report addresses a job may name, and their total length: every finished task mails each of them,
 * so an unbounded list would make the farm's mailer an amplifier for whoever submits.
 */
export const MAX_REPORT_ADDRESSES = 20;
export const MAX_REPORT_CHARACTERS = 2000;

const Hex = (length: number) => Type.String({ pattern: `^[0-9a-fA-F]{${length}}$` });
const FilterList = Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: MAX_FILTERS })]);

/** A file a package brings with it (a `.dsc`'s tarballs), with the size and SHA-256 its package lists. */
const PartSchema = Type.Object({
  file: Type.String({ minLength: 1, maxLength: 255 }),
  size: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  sha256sum: Hex(64),
});
export type PackagePart = Static<typeof PartSchema>;
/** Parts one package may bring (as many as a `.dsc` may list). */
export const MAX_PARTS = 100;

/** One source package as it stands in `build.yml`. */
const PackageEntrySchema = Type.Object({
  file: Type.String({ minLength: 1, maxLength: 255 }),
  type: Type.String({ minLength: 1, maxLength: 20 }),
  size: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  sha1sum: Hex(40),
  sha256sum: Type.Optional(Hex(64)),
  /** DSC: the files the `.dsc` lists, in the job beside it. */
  parts: Type.Optional(Type.Array(PartSchema, { maxItems: MAX_PARTS })),
});

/** `build.yml` as read: lists may be strings, optional values may be null (`~`). */
const ManifestInputSchema = Type.Object({
  id: Type.String({ minLength: 1 }),
  bucket: Type.String({ minLength: 1, maxLength: 50 }),
  platforms: Type.Optional(Type.Union([FilterList, Type.Null()])),
  archs: Type.Optional(Type.Union([FilterList, Type.Null()])),
  report: Type.Optional(Type.Union([FilterList, Type.Null()])),
  packages: Type.Array(PackageEntrySchema, { maxItems: MAX_PACKAGES }),
  size: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), Type.Null()])),
  submitter: Type.Optional(Type.Union([Type.String({ maxLength: 50 }), Type.Null()])),
  subtime: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 2 ** 40 }), Type.Null()])),
});

export type PackageEntry = Omit<Static<typeof PackageEntrySchema>, 'type'> & { type: SourceType };

/** Every file of a package: itself, then its parts, each with its size. */
export function packageFiles(p: PackageEntry): { file: string; size: number }[] {
  return [{ file: p.file, size: p.size }, ...(p.parts ?? []).map((x) => ({ file: x.file, size: x.size }))];
}

/** A job's manifest, normalised: lists split, defaults filled in, every value checked. */
export interface Manifest {
  id: string;
  bucket: string;
  platforms: string[];
  archs: string[];
  report: string[];
  packages: PackageEntry[];
  /** Total bytes of the source packages and their parts. */
  size: number;
  submitter: string | null;
  /** Submission time, epoch seconds (set by the incoming processor). */
  subtime: number | null;
}

/** The family a job builds into: its packages' (a job holds one kind of source). */
export function manifestFamily(manifest: { packages: readonly { type: SourceType }[] }): PackageFamily {
  return familyOfSource(manifest.packages[0]?.type ?? 'SRPM');
}

/**
 * Parses and checks a manifest. `label` names the file in messages (e.g. `incoming/abc/build.yml`).
 * Hostile input is expected: aliases are refused outright (no alias bombs), and every value is
 * checked against the schema before it is used.
 */
export function parseManifest(text: string, label: string): Manifest {
  if (Buffer.byteLength(text) > MANIFEST_MAX_BYTES) {
    throw manifestError(label, `it is larger than ${MANIFEST_MAX_BYTES} bytes`);
  }
  let data: unknown;
  try {
    // The library's own duplicate-key check is quadratic (a hostile 1 MiB manifest took minutes);
    // duplicates are found below with a set per mapping instead.
    const doc = YAML.parseDocument(text, { uniqueKeys: false, prettyErrors: true });
    if (doc.errors.length > 0) throw doc.errors[0];
    const duplicate = findDuplicateKey(doc.contents);
    if (duplicate)
      throw manifestError(label, `malformed YAML: the key '${printable(duplicate)}' appears twice in one mapping`);
    data = doc.toJS({ maxAliasCount: 0 });
  } catch (err) {
    if (err instanceof PkgForgeError) throw err;
    if (err instanceof YAMLParseError) {
      // With prettyErrors the first line already says "at line L, column C".
      throw manifestError(label, `malformed YAML: ${firstLine(err.message).replace(/:$/, '')}`);
    }
    // The yaml library reports refused aliases as a plain ReferenceError when converting.
    const message = err instanceof Error ? err.message : String(err);
    if (/alias/i.test(message)) throw manifestError(label, 'YAML aliases (*name) are not allowed in a manifest');
    throw manifestError(label, `unusable YAML: ${firstLine(message)}`);
  }
  if (data === null || data === undefined) throw manifestError(label, 'it is empty');
  if (typeof data !== 'object' || Array.isArray(data))
    throw manifestError(label, 'it must be a YAML mapping of keys to values');
  return normaliseManifest(data, label);
}

/** Checks a manifest given as a value (from YAML, JSON or an HTTP form) and fills in defaults. */
export function normaliseManifest(data: unknown, label: string): Manifest {
  if (!Schema.Check(ManifestInputSchema, data)) {
    const first = Schema.Errors(ManifestInputSchema, data)[1][0];
    const where = first?.instancePath ? first.instancePath.slice(1).replaceAll('/', '.') : 'the manifest';
    const missing =
      first?.keyword === 'required'
        ? `missing ${(first.params as { requiredProperties?: string[] }).requiredProperties?.join(', ')}`
        : first?.message;
    throw manifestError(label, `${where}: ${missing ?? 'does not follow the schema'}`);
  }
  try {
    assertJobId(data.id);
  } catch (err) {
    throw manifestError(label, (err as Error).message);
  }
  if (!SAFE_NAME_PATTERN.test(data.bucket)) {
    throw manifestError(
      label,
      `bucket '${printable(data.bucket)}' may only contain A-Z a-z 0-9 _ . + - and must not start with a dot or a dash`,
    );
  }
  const platforms = checkFilters(splitList(data.platforms ?? undefined), 'platforms', label);
  const archs = checkFilters(splitList(data.archs ?? undefined), 'archs', label);
  const report = checkReport(splitList(data.report ?? undefined), label);
  if (data.packages.length === 0) throw manifestError(label, 'it lists no packages to build');
  // Names that can never be right are refused outright (a different code from the manifest's, so
  // the incoming processor does not wait for a manifest still being written to correct them).
  const nameError = (file: string, reason: string) =>
    new PkgForgeError(ErrorCode.unsafePath, `${label}: package file '${printable(file)}': ${reason}`);
  const files = data.packages.flatMap((p) => [p.file, ...(p.parts ?? []).map((x) => x.file)]);
  for (const file of files) {
    const problem = fileNameProblem(file) ?? (file.startsWith('-') ? 'the file name cannot start with a dash' : null);
    if (problem) throw nameError(file, problem);
    if (fileNameKey(file) === MANIFEST_FILE)
      throw nameError(file, `${MANIFEST_FILE} is the name of the job's manifest, not of a package`);
  }
  const twins = fileNamesProblem(files);
  if (twins) throw new PkgForgeError(ErrorCode.unsafePath, `${label}: ${twins}`);
  const packages: PackageEntry[] = data.packages.map((p) => {
    if (!(SOURCE_TYPES as readonly string[]).includes(p.type)) {
      throw manifestError(
        label,
        `package file '${printable(p.file)}' has type '${printable(p.type)}', which is not supported (supported: ${SOURCE_TYPES.join(', ')})`,
      );
    }
    const entry: PackageEntry = {
      file: p.file,
      type: p.type as SourceType,
      size: p.size,
      sha1sum: p.sha1sum.toLowerCase(),
    };
    if (p.sha256sum !== undefined) entry.sha256sum = p.sha256sum.toLowerCase();
    if (p.parts !== undefined && p.type !== 'DSC')
      throw manifestError(label, `package file '${printable(p.file)}' is of type ${p.type}, which has no parts`);
    if (p.parts !== undefined)
      entry.parts = p.parts.map((x) => ({ file: x.file, size: x.size, sha256sum: x.sha256sum.toLowerCase() }));
    return entry;
  });
  const types = [...new Set(packages.map((p) => p.type))];
  if (types.length > 1)
    throw manifestError(label, `a job holds one kind of source package, and this one mixes ${types.join(' and ')}`);
  return {
    id: data.id,
    bucket: data.bucket,
    platforms: platforms.length > 0 ? platforms : ['auto'],
    archs: archs.length > 0 ? archs : ['all'],
    report,
    packages,
    size: packages.flatMap(packageFiles).reduce((sum, f) => sum + f.size, 0),
    submitter: data.submitter ?? null,
    subtime: data.subtime ?? null,
  };
}

function checkReport(addresses: string[], label: string): string[] {
  if (addresses.length > MAX_REPORT_ADDRESSES)
    throw manifestError(label, `report: ${addresses.length} addresses, at most ${MAX_REPORT_ADDRESSES} are allowed`);
  const length = addresses.reduce((sum, a) => sum + a.length, 0);
  if (length > MAX_REPORT_CHARACTERS)
    throw manifestError(
      label,
      `report: the addresses are ${length} characters long together, at most ${MAX_REPORT_CHARACTERS} are allowed`,
    );
  for (const address of addresses) {
    if (!isEmailAddress(address))
      throw manifestError(label, `report address '${printable(address)}' is not a valid e-mail address`);
  }
  return addresses;
}

function checkFilters(values: string[], key: string, label: string): string[] {
  if (values.length > MAX_FILTERS) throw manifestError(label, `${key}: more than ${MAX_FILTERS} entries`);
  for (const v of values) {
    const name = v.startsWith('!') ? v.slice(1) : v;
    if (!SAFE_NAME_PATTERN.test(name) || name.length > 50) {
      throw manifestError(label, `${key}: '${printable(v)}' is not a platform or architecture name`);
    }
  }
  return values;
}

/** `build.yml` text for a manifest: keys sorted, as the original wrote them, with both checksums. */
export function serialiseManifest(manifest: Manifest): string {
  const packages = manifest.packages.map((p) => sortKeys({ ...p }));
  const doc = sortKeys({
    archs: manifest.archs,
    bucket: manifest.bucket,
    id: manifest.id,
    packages,
    platforms: manifest.platforms,
    report: manifest.report,
    size: manifest.size,
    submitter: manifest.submitter,
    subtime: manifest.subtime,
  });
  return YAML.stringify(doc, { aliasDuplicateObjects: false });
}

function sortKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))) as T;
}

/** The first key that appears twice in one mapping, anywhere in the document, or null. */
function findDuplicateKey(node: unknown): string | null {
  const stack = [node];
  while (stack.length > 0) {
    const n = stack.pop();
    if (YAML.isMap(n)) {
      const seen = new Set<string>();
      for (const pair of n.items) {
        const key = YAML.isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (seen.has(key)) return key;
        seen.add(key);
        stack.push(pair.value);
      }
    } else if (YAML.isSeq(n)) {
      stack.push(...n.items);
    }
  }
  return null;
}

function manifestError(label: string, reason: string): PkgForgeError {
  return new PkgForgeError(ErrorCode.manifest, `${label}: ${reason}`);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
