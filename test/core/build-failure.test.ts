import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobFailureSummary, rpmbuildFailureCause } from '../../src/core/build-failure.ts';

describe('the cause of a failed build', () => {
  it("is the scriptlet's last line before rpmbuild's verdict, with the stage", () => {
    const tail = [
      'Executing(%build): /bin/sh -e /var/tmp/rpm-tmp.Ab12Cd',
      '+ cd hello-1.0',
      '+ makeinfo --version',
      '/var/tmp/rpm-tmp.Ab12Cd: line 42: makeinfo: command not found',
      'error: Bad exit status from /var/tmp/rpm-tmp.Ab12Cd (%build)',
      '',
      'RPM build errors:',
      '    Bad exit status from /var/tmp/rpm-tmp.Ab12Cd (%build)',
    ].join('\n');
    assert.equal(rpmbuildFailureCause(tail), 'makeinfo: command not found (in %build)');
    assert.equal(
      rpmbuildFailureCause('+ exit 1\nerror: Bad exit status from /var/tmp/rpm-tmp.X (%install)\n'),
      'the %install stage failed',
    );
    // dash, /bin/sh on Debian, says it its own way; stdout and stderr may come in either order.
    assert.equal(
      rpmbuildFailureCause(
        'RPM build errors:\n/build/tmp/rpm-tmp.Q: 28: makeinfo: not found\nerror: Bad exit status from /build/tmp/rpm-tmp.Q (%build)\n    Bad exit status from /build/tmp/rpm-tmp.Q (%build)\n',
      ),
      'makeinfo: command not found (in %build)',
    );
    // rpm's `error: ` prefix and its message may come apart, with the build's stdout between them.
    assert.equal(
      rpmbuildFailureCause(
        'error: this build breaks on purpose\nBad exit status from /build/tmp/rpm-tmp.Q (%build)\n\nRPM build errors:\n    Bad exit status from /build/tmp/rpm-tmp.Q (%build)\n',
      ),
      'this build breaks on purpose (in %build)',
    );
    assert.equal(
      rpmbuildFailureCause('this build breaks on purpose\nerror: \nBad exit status from /t/rpm-tmp.Q (%build)\n'),
      'this build breaks on purpose (in %build)',
    );
  });

  it("is rpmbuild's own error when no scriptlet failed, and nothing when the output says nothing", () => {
    assert.equal(
      rpmbuildFailureCause(
        'Processing files: x-1-1.noarch\nerror: File not found: /build/BUILDROOT/x/usr/bin/x\nerror: File not found: /y\n',
      ),
      'File not found: /build/BUILDROOT/x/usr/bin/x (and 1 more errors)',
    );
    assert.equal(rpmbuildFailureCause('Killed\n'), null);
    assert.ok(
      rpmbuildFailureCause(`${'x'.repeat(5000)}\nerror: Bad exit status from /t/rpm-tmp.X (%build)`)!.length <= 300,
    );
  });

  it("sums up a job's failed tasks", () => {
    assert.equal(jobFailureSummary(3, []), null);
    assert.equal(
      jobFailureSummary(3, [
        { platform: 'deb12', arch: 'x86_64', reason: 'makeinfo: command not found' },
        { platform: 'el9', arch: 'x86_64', reason: null },
      ]),
      '2 of 3 tasks failed: deb12/x86_64: makeinfo: command not found; el9/x86_64: no reason recorded',
    );
    assert.equal(
      jobFailureSummary(1, [{ platform: 'el9', arch: 'x86_64', reason: 'x' }]),
      'the task failed: el9/x86_64: x',
    );
  });
});
