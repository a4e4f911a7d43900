import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileNameProblem, fileNamesProblem, printable } from '../../src/core/names.ts';

describe('file names', () => {
  for (const [label, c] of [
    ['a right-to-left override (U+202E)', '\u202e'],
    ['a left-to-right embedding (U+202A)', '\u202a'],
    ['a first-strong isolate (U+2068)', '\u2068'],
    ['a pop directional isolate (U+2069)', '\u2069'],
    ['a C1 control (U+0085)', '\u0085'],
    ['a C1 control (U+009B, CSI)', '\u009b'],
    ['a zero-width space (U+200B)', '\u200b'],
    ['a right-to-left mark (U+200F)', '\u200f'],
    ['a line separator (U+2028)', '\u2028'],
    ['a paragraph separator (U+2029)', '\u2029'],
    ['a byte order mark (U+FEFF)', '\ufeff'],
    ['an escape (U+001B)', '\u001b'],
    ['an unpaired surrogate', '\ud800'],
    ['a tag character (U+E0041)', '\u{e0041}'],
  ] as const) {
    it(`refuses ${label}, naming it escaped`, () => {
      const problem = fileNameProblem(`hello${c}gpj.src.rpm`);
      assert.match(problem ?? '', /invisible or text-direction character \\(x|u)/);
      assert.ok(!problem!.includes(c), 'the character itself is not in the message');
    });
  }

  it('accepts ordinary names, accented letters included', () => {
    assert.equal(fileNameProblem('hello-1.0-1.src.rpm'), null);
    assert.equal(fileNameProblem('caf\u00e9-1.0-1.src.rpm'), null);
    assert.equal(fileNameProblem('cafe\u0301-1.0-1.src.rpm'), null);
  });

  it('finds names that are the same once Unicode is normalised (NFC/NFD, compatibility forms)', () => {
    assert.match(
      fileNamesProblem(['caf\u00e9-1-1.src.rpm', 'cafe\u0301-1-1.src.rpm']) ?? '',
      /differ only in their Unicode form/,
    );
    assert.match(
      fileNamesProblem(['\ufb01le-1-1.src.rpm', 'file-1-1.src.rpm']) ?? '',
      /differ only in their Unicode form/,
    );
    assert.match(fileNamesProblem(['a.src.rpm', 'a.src.rpm']) ?? '', /'a\.src\.rpm' is listed twice/);
    assert.equal(fileNamesProblem(['a.src.rpm', 'A.src.rpm', 'b.src.rpm']), null);
  });
});

describe('printable', () => {
  it('escapes invisible and text-direction characters wherever it prints', () => {
    assert.equal(printable('hello\u202egpj.src.rpm'), 'hello\\u202egpj.src.rpm');
    assert.equal(printable('\u001b[31mred'), '\\x1b[31mred');
    assert.equal(printable('a\u0085b\u2066c\u200bd\ufeffe\u2028f'), 'a\\x85b\\u2066c\\u200bd\\ufeffe\\u2028f');
    assert.equal(printable('x\u{e0041}'), 'x\\u{e0041}');
    assert.equal(printable('x\ud800'), 'x\\ud800');
    assert.equal(printable('caf\u00e9 \u65e5\u672c'), 'caf\u00e9 \u65e5\u672c');
  });

  it('bounds the length', () => assert.equal(printable('x'.repeat(200), 10), `${'x'.repeat(10)}…`));
});
