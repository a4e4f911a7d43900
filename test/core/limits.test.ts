import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_SUBMISSION_LIMITS,
  jobSizeProblem,
  packageSizeProblem,
  parseReserve,
  reserveBytes,
  spaceProblem,
} from '../../src/core/limits.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('submission limits', () => {
  it("default far above any real source package, and below a hostile manifest's terabyte", () => {
    assert.equal(DEFAULT_SUBMISSION_LIMITS.maxPackageSize, 8 * GiB);
    assert.equal(DEFAULT_SUBMISSION_LIMITS.maxJobSize, 16 * GiB);
    assert.equal(packageSizeProblem('big.src.rpm', 2 * GiB, DEFAULT_SUBMISSION_LIMITS), null);
    assert.match(
      packageSizeProblem('huge.src.rpm', 1024 * GiB, DEFAULT_SUBMISSION_LIMITS) ?? '',
      /^huge\.src\.rpm: is 1099511627776 bytes \(1 TiB\), more than the farm accepts for one package \(max_package_size: 8 GiB\)$/,
    );
  });

  it('allow a package of exactly the limit, and refuse one byte more', () => {
    const limits = { maxPackageSize: 1000, maxJobSize: 5000 };
    assert.equal(packageSizeProblem('a.src.rpm', 1000, limits), null);
    assert.match(packageSizeProblem('a.src.rpm', 1001, limits) ?? '', /a\.src\.rpm: is 1001 bytes/);
  });

  it('refuse a job whose packages together pass max_job_size, each within max_package_size', () => {
    const limits = { maxPackageSize: 1000, maxJobSize: 2500 };
    const p = (file: string, size: number) => ({ file, size });
    assert.equal(jobSizeProblem([p('a.src.rpm', 1000), p('b.src.rpm', 1000), p('c.src.rpm', 500)], limits), null);
    assert.match(
      jobSizeProblem([p('a.src.rpm', 1000), p('b.src.rpm', 1000), p('c.src.rpm', 501)], limits) ?? '',
      /its 3 files are 2501 bytes .* together, more than the farm accepts for one job \(max_job_size: 2\.4 KiB\)/,
    );
    // One package over its own limit is named, whatever the total.
    assert.match(
      jobSizeProblem([p('a.src.rpm', 10), p('b.src.rpm', 1001)], limits) ?? '',
      /^b\.src\.rpm: .*max_package_size/,
    );
  });

  it('name the file escaped', () =>
    assert.match(
      packageSizeProblem('a\u202eb.src.rpm', 2, { maxPackageSize: 1, maxJobSize: 1 }) ?? '',
      /^a\\u202eb\.src\.rpm: /,
    ));
});

describe('the accepted reserve', () => {
  it('is a size or a percentage of the file system', () => {
    assert.deepEqual(parseReserve('1G'), { bytes: GiB });
    assert.deepEqual(parseReserve(0), { bytes: 0 });
    assert.deepEqual(parseReserve('5%'), { percent: 5 });
    assert.equal(reserveBytes({ percent: 5 }, 200 * GiB), 10 * GiB);
    assert.equal(reserveBytes({ bytes: 123 }, 200 * GiB), 123);
    assert.throws(() => parseReserve('150%'), /not a percentage from 0% to 100%/);
  });

  it('lets a copy through only when it leaves the reserve free, after the copies in flight', () => {
    const space = { available: 10 * MiB, total: 100 * MiB };
    assert.equal(spaceProblem('a.src.rpm', 9 * MiB, space, 0, { bytes: MiB }), null);
    assert.match(
      spaceProblem('a.src.rpm', 9 * MiB + 1, space, 0, { bytes: MiB }) ?? '',
      /^waiting for space in the accepted directory: a\.src\.rpm needs 9\.0 MiB and 1 MiB is kept free \(accepted_reserve\), but only 10 MiB is free; the job is kept/,
    );
    assert.equal(spaceProblem('a.src.rpm', 4 * MiB, space, 6 * MiB, { bytes: 0 }), null);
    assert.match(
      spaceProblem('a.src.rpm', 4 * MiB + 1, space, 6 * MiB, { bytes: 0 }) ?? '',
      /only 4 MiB is free after the copies in progress/,
    );
    assert.match(
      spaceProblem('a.src.rpm', MiB, space, 0, { percent: 10 }) ?? '',
      /10% of the file system is kept free/,
    );
    assert.equal(spaceProblem('a.src.rpm', MiB, space, 0, { percent: 9 }), null);
  });
});
