import { open, type FileHandle } from 'node:fs/promises';

/**
 * A reader of the RPM file format's lead and headers, enough to validate a source package without
 * the rpm tools. Only the lead, the signature header and the main header are read (never the
 * payload), each with bounds checked against the file, so a hostile file cannot make us read far
 * or allocate much.
 *
 * Layout: a 96-byte lead; the signature header, padded to 8 bytes; the main header. A header is
 * magic (8E AD E8 01), 4 reserved bytes, the number of index entries, the size of the data store,
 * then 16-byte entries (tag, type, offset, count) and the store.
 */

const LEAD_SIZE = 96;
const LEAD_MAGIC = 0xedabeedb;
const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01]);
/** rpm itself refuses more than this many tags or this much header data. */
const MAX_INDEX_ENTRIES = 65536;
const MAX_STORE_BYTES = 64 * 1024 * 1024;
/** More entries than any real package has in one array (files, requires…). */
const MAX_ARRAY_ITEMS = 1_000_000;

export const RpmTag = {
  name: 1000,
  version: 1001,
  release: 1002,
  epoch: 1003,
  summary: 1004,
  arch: 1022,
  oldFilenames: 1027,
  sourceRpm: 1044,
  provideName: 1047,
  requireName: 1049,
  sourcePackage: 1106,
  dirIndexes: 1116,
  baseNames: 1117,
  dirNames: 1118,
} as const;

const TYPE = {
  char: 1,
  int8: 2,
  int16: 3,
  int32: 4,
  int64: 5,
  string: 6,
  bin: 7,
  stringArray: 8,
  i18nString: 9,
} as const;

export class RpmFormatError extends Error {
  override name = 'RpmFormatError';
}

export interface RpmLead {
  major: number;
  minor: number;
  /** 0 for a binary package, 1 for a source package. */
  type: number;
  signatureType: number;
}

interface IndexEntry {
  tag: number;
  type: number;
  offset: number;
  count: number;
}

/** One parsed header: typed access to tags by number. */
export class RpmHeader {
  private readonly entries = new Map<number, IndexEntry>();
  constructor(
    entries: IndexEntry[],
    private readonly store: Buffer,
  ) {
    for (const e of entries) this.entries.set(e.tag, e);
  }

  has(tag: number): boolean {
    return this.entries.has(tag);
  }

  string(tag: number): string | undefined {
    const e = this.entries.get(tag);
    if (!e) return undefined;
    if (e.type !== TYPE.string && e.type !== TYPE.i18nString && e.type !== TYPE.stringArray) {
      throw new RpmFormatError(`tag ${tag} is not a string`);
    }
    return this.readStrings(e, 1)[0];
  }

  strings(tag: number): string[] {
    const e = this.entries.get(tag);
    if (!e) return [];
    if (e.type !== TYPE.stringArray && e.type !== TYPE.string && e.type !== TYPE.i18nString) {
      throw new RpmFormatError(`tag ${tag} is not a string array`);
    }
    return this.readStrings(e, e.type === TYPE.string ? 1 : e.count);
  }

  int32s(tag: number): number[] {
    const e = this.entries.get(tag);
    if (!e) return [];
    if (e.type !== TYPE.int32) throw new RpmFormatError(`tag ${tag} is not a 32-bit integer`);
    if (e.count > MAX_ARRAY_ITEMS || e.offset + e.count * 4 > this.store.length)
      throw new RpmFormatError(`tag ${tag} runs past the end of the header`);
    const out: number[] = [];
    for (let i = 0; i < e.count; i++) out.push(this.store.readInt32BE(e.offset + i * 4));
    return out;
  }

  private readStrings(e: IndexEntry, count: number): string[] {
    // Every string takes at least its NUL byte: a count beyond the bytes left is a lie, and
    // believing it would let a small hostile header make a huge array.
    if (count > this.store.length - e.offset || count > MAX_ARRAY_ITEMS)
      throw new RpmFormatError(`tag ${e.tag} claims ${count} strings, more than its data can hold`);
    const out: string[] = [];
    let pos = e.offset;
    for (let i = 0; i < count; i++) {
      const end = this.store.indexOf(0, pos);
      if (end < 0) throw new RpmFormatError(`tag ${e.tag} has an unterminated string`);
      out.push(this.store.toString('utf8', pos, end));
      pos = end + 1;
    }
    return out;
  }
}

export interface RpmFile {
  lead: RpmLead;
  header: RpmHeader;
}

/**
 * Reads the lead and main header of an RPM file, given by path or as a handle the caller opened
 * (and closes; reads are positional, so the handle's position is left at the start). Throws
 * RpmFormatError for anything malformed.
 */
export async function readRpmHeader(file: string | FileHandle): Promise<RpmFile> {
  const fh = typeof file === 'string' ? await open(file, 'r') : file;
  try {
    const { size } = await fh.stat();
    // Headers of ordinary source packages fit in the first block: one read serves them all.
    const first = Buffer.allocUnsafe(Math.min(size, FIRST_READ));
    const { bytesRead } = await fh.read(first, 0, first.length, 0);
    const reader: Reader = { fh, size, first: first.subarray(0, bytesRead) };
    const leadBuf = await readExactly(reader, 0, LEAD_SIZE, 'the lead');
    if (leadBuf.readUInt32BE(0) !== LEAD_MAGIC) throw new RpmFormatError('it is not an RPM file (bad magic number)');
    const lead: RpmLead = {
      major: leadBuf.readUInt8(4),
      minor: leadBuf.readUInt8(5),
      type: leadBuf.readUInt16BE(6),
      signatureType: leadBuf.readUInt16BE(78),
    };
    if (lead.major < 3) throw new RpmFormatError(`RPM format version ${lead.major} is too old to read`);
    if (lead.signatureType !== 5) throw new RpmFormatError(`unsupported signature type ${lead.signatureType}`);
    const sig = await readHeaderAt(reader, LEAD_SIZE, 'the signature header');
    // The signature header is padded so that the main header starts on an 8-byte boundary.
    const mainOffset = sig.end + ((8 - (sig.end % 8)) % 8);
    const main = await readHeaderAt(reader, mainOffset, 'the main header');
    return { lead, header: main.header };
  } finally {
    if (typeof file === 'string') await fh.close();
  }
}

/** The file, with its first block already read. */
interface Reader {
  fh: FileHandle;
  size: number;
  first: Buffer;
}

const FIRST_READ = 64 * 1024;

async function readHeaderAt(reader: Reader, offset: number, what: string): Promise<{ header: RpmHeader; end: number }> {
  const intro = await readExactly(reader, offset, 16, what);
  if (!intro.subarray(0, 4).equals(HEADER_MAGIC)) throw new RpmFormatError(`${what} has a bad magic number`);
  const nindex = intro.readUInt32BE(8);
  const hsize = intro.readUInt32BE(12);
  if (nindex > MAX_INDEX_ENTRIES)
    throw new RpmFormatError(`${what} claims ${nindex} entries, more than ${MAX_INDEX_ENTRIES}`);
  if (hsize > MAX_STORE_BYTES)
    throw new RpmFormatError(`${what} claims ${hsize} bytes of data, more than ${MAX_STORE_BYTES}`);
  const body = await readExactly(reader, offset + 16, nindex * 16 + hsize, what);
  const entries: IndexEntry[] = [];
  for (let i = 0; i < nindex; i++) {
    const e = {
      tag: body.readUInt32BE(i * 16),
      type: body.readUInt32BE(i * 16 + 4),
      offset: body.readUInt32BE(i * 16 + 8),
      count: body.readUInt32BE(i * 16 + 12),
    };
    if (e.offset >= hsize && e.count > 0 && e.type !== 0)
      throw new RpmFormatError(`${what}: tag ${e.tag} points outside the header data`);
    entries.push(e);
  }
  const store = body.subarray(nindex * 16);
  return { header: new RpmHeader(entries, store), end: offset + 16 + nindex * 16 + hsize };
}

async function readExactly(
  { fh, size: fileSize, first }: Reader,
  position: number,
  length: number,
  what: string,
): Promise<Buffer> {
  if (position + length > fileSize) throw new RpmFormatError(`the file is truncated (it ends inside ${what})`);
  if (position + length <= first.length) return first.subarray(position, position + length);
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new RpmFormatError(`the file is truncated (it ends inside ${what})`);
    done += bytesRead;
  }
  return buf;
}
