import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../src/util/errors.ts';

describe('error codes', () => {
  it('are each documented once in docs/errors.md, and the docs name no other', () => {
    const docs = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
    const documented = [...docs.matchAll(/^\| `(PKGF_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    const codes = Object.values(ErrorCode);
    assert.deepEqual([...documented].sort(), [...codes].sort());
    assert.equal(new Set(codes).size, codes.length, 'codes are unique');
  });
});
