import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { debianArch, debianTargets } from '../../src/core/debian-arch.ts';

const selected = [
  { platform: 'deb12', arch: 'aarch64' },
  { platform: 'deb12', arch: 'x86_64' },
  { platform: 'deb13', arch: 'arm64' },
  { platform: 'deb13', arch: 'riscv64' },
];
const names = (ts: { platform: string; arch: string }[]) => ts.map((t) => `${t.platform}/${t.arch}`);

describe("a .dsc's Architecture decides where a Debian job builds", () => {
  it('names architectures as Debian does', () => {
    assert.deepEqual(['x86_64', 'aarch64', 'i686', 'ppc64le', 'amd64', 'riscv64'].map(debianArch), [
      'amd64',
      'arm64',
      'i386',
      'ppc64el',
      'amd64',
      'riscv64',
    ]);
  });

  it('builds `all` once per platform, on amd64 when it has it, else the first by name', () => {
    assert.deepEqual(names(debianTargets([['all']], selected)), ['deb12/x86_64', 'deb13/arm64']);
  });

  it('builds `any` and its wildcards everywhere, and a list where it matches', () => {
    assert.deepEqual(names(debianTargets([['any']], selected)), names(selected));
    assert.deepEqual(names(debianTargets([['linux-any']], selected)), names(selected));
    assert.deepEqual(names(debianTargets([['arm64', 'riscv64']], selected)), [
      'deb12/aarch64',
      'deb13/arm64',
      'deb13/riscv64',
    ]);
    assert.deepEqual(names(debianTargets([['s390x']], selected)), []);
  });

  it("takes the union of a job's packages", () => {
    assert.deepEqual(names(debianTargets([['all'], ['riscv64']], selected)), [
      'deb12/x86_64',
      'deb13/arm64',
      'deb13/riscv64',
    ]);
  });
});
