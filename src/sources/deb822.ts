/**
 * Debian's control-file format (deb822, Debian Policy §5.1) as `.dsc` files use it: paragraphs of
 * `Field: value` lines, a value continued on lines that start with a space or a tab, and a line of
 * ` .` in a continuation standing for an empty line. A clearsigned file (OpenPGP's cleartext
 * signature, RFC 4880 §7) is read through its armour: the signed text is returned with the
 * dash-escaping undone, and the signature kept for whoever verifies it.
 *
 * The input is a submitter's: the parser never evaluates anything, bounds what it keeps, and says
 * which line is wrong.
 */

/** One paragraph: field names as written, looked up without regard to case. */
export class Deb822Paragraph {
  readonly #fields = new Map<string, { name: string; value: string }>();

  /** Adds a field; false when the paragraph has it already (a duplicate is an error in deb822). */
  set(name: string, value: string): boolean {
    const key = name.toLowerCase();
    if (this.#fields.has(key)) return false;
    this.#fields.set(key, { name, value });
    return true;
  }

  /** The value of a field (continuation lines joined by `\n`, the first line trimmed), or undefined. */
  get(name: string): string | undefined {
    return this.#fields.get(name.toLowerCase())?.value;
  }

  /** The field names, as written, in order. */
  names(): string[] {
    return [...this.#fields.values()].map((f) => f.name);
  }
}

export interface Deb822Document {
  paragraphs: Deb822Paragraph[];
  /** The armoured signature of a clearsigned file, or null when the file was not signed. */
  signature: string | null;
}

export class Deb822Error extends Error {}

const SIGNED_HEADER = '-----BEGIN PGP SIGNED MESSAGE-----';
const SIGNATURE_BEGIN = '-----BEGIN PGP SIGNATURE-----';
const SIGNATURE_END = '-----END PGP SIGNATURE-----';
/** Field names: printable ASCII without a colon, not starting with `#` or `-` (Policy §5.1). */
const FIELD_NAME = /^[!-9;-~][!-9;-~]*$/;

/** Parses a deb822 text; a clearsigned one through its armour. Throws a Deb822Error naming the line. */
export function parseDeb822(text: string): Deb822Document {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let body = lines;
  let signature: string | null = null;
  let offset = 0;
  if (lines[0]?.trim() === SIGNED_HEADER) {
    const begin = lines.indexOf(SIGNATURE_BEGIN);
    const end = lines.indexOf(SIGNATURE_END);
    if (begin < 0 || end < begin)
      throw new Deb822Error('the file is clearsigned but its signature is missing or cut short');
    // Armour headers end at the first blank line, and a cleartext signature has only `Hash:` ones
    // (RFC 4880 §7): anything else there is refused, so no field can pass for a header.
    const blank = lines.findIndex((l, i) => i > 0 && l.trim() === '');
    if (blank < 0 || blank > begin)
      throw new Deb822Error('the signed message has no blank line after its armour headers');
    for (let i = 1; i < blank; i++)
      if (!/^Hash: [A-Za-z0-9, ]+$/.test(lines[i]!)) throw new Deb822Error(`line ${i + 1}: not an armour header`);
    for (const l of lines.slice(end + 1))
      if (l.trim() !== '') throw new Deb822Error(`line ${end + 2}: text after the signature is not signed`);
    offset = blank + 1;
    // Dash-escaped lines (`- -----…`) are the signed text's own lines that begin with a dash.
    body = lines.slice(offset, begin).map((l) => (l.startsWith('- ') ? l.slice(2) : l));
    signature = lines.slice(begin, end + 1).join('\n');
  } else if (lines.some((l) => l.startsWith('-----BEGIN PGP'))) {
    throw new Deb822Error('an OpenPGP armour block is not where a clearsigned file has it');
  }
  return { paragraphs: paragraphsOf(body, offset), signature };
}

function paragraphsOf(lines: string[], offset: number): Deb822Paragraph[] {
  const paragraphs: Deb822Paragraph[] = [];
  let current: Deb822Paragraph | null = null;
  let field: { name: string; lines: string[] } | null = null;
  const flush = () => {
    if (field && current && !current.set(field.name, field.lines.join('\n')))
      throw new Deb822Error(`the field ${field.name} appears twice in one paragraph`);
    field = null;
  };
  lines.forEach((line, i) => {
    const where = `line ${offset + i + 1}`;
    if (line.trim() === '') {
      flush();
      if (current) paragraphs.push(current);
      current = null;
      return;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!field) throw new Deb822Error(`${where}: a continuation line with no field before it`);
      field.lines.push(line.trim() === '.' ? '' : line.trim());
      return;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!FIELD_NAME.test(name) || name.startsWith('#') || name.startsWith('-'))
      throw new Deb822Error(`${where}: not a 'Field: value' line`);
    flush();
    current ??= new Deb822Paragraph();
    field = { name, lines: [line.slice(colon + 1).trim()] };
  });
  flush();
  if (current) paragraphs.push(current);
  return paragraphs;
}
