import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { coerceError, ErrorCode, httpStatusOf } from '../../src/util/errors.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );

describe('error codes', () => {
  const docs = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const rows = [...docs.matchAll(/^\| `(PKGF_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => ({
    code: m[1]!,
    status: Number(m[2]),
  }));

  it('are each documented once in docs/errors.md with the status they answer, and the docs name no other', () => {
    const codes = Object.values(ErrorCode);
    assert.deepEqual(rows.map((r) => r.code).sort(), [...codes].sort());
    assert.equal(new Set(codes).size, codes.length, 'codes are unique');
    for (const r of rows) assert.equal(r.status, httpStatusOf(r.code), r.code);
  });

  it('each carry an HTTP error status', () => {
    for (const code of Object.values(ErrorCode)) assert.ok(httpStatusOf(code) >= 400 && httpStatusOf(code) < 600, code);
  });

  it('are each used somewhere in src/', () => {
    const text = sources(join(ROOT, 'src'))
      .filter((f) => !f.endsWith('util/errors.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const unused = Object.keys(ErrorCode).filter((name) => !new RegExp(`ErrorCode\\.${name}\\b`).test(text));
    assert.deepEqual(unused, []);
  });

  it('coerceError keeps what was thrown as the cause', () => {
    const e = coerceError('a string');
    assert.equal(e.message, 'a string');
    assert.equal(e.cause, 'a string');
  });
});
