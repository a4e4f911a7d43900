import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterWarnings, selectTargets } from '../../src/core/targets.ts';

// The original's t/process_platforms.t: sl5 and f13 are auto, sl6 is not; each has i386 and x86_64.
// A Debian platform beside them, auto too, is never selected for these (source RPM) jobs.
const available = [
  { name: 'sl5', arch: 'i386', auto: true, family: 'rpm' },
  { name: 'sl5', arch: 'x86_64', auto: true, family: 'rpm' },
  { name: 'sl6', arch: 'i386', auto: false, family: 'rpm' },
  { name: 'sl6', arch: 'x86_64', auto: false, family: 'rpm' },
  { name: 'f13', arch: 'i386', auto: true, family: 'rpm' },
  { name: 'f13', arch: 'x86_64', auto: true, family: 'rpm' },
  { name: 'deb12', arch: 'x86_64', auto: true, family: 'deb' },
] as const;

const AUTO = ['f13/i386', 'f13/x86_64', 'sl5/i386', 'sl5/x86_64'];
const ALL = ['f13/i386', 'f13/x86_64', 'sl5/i386', 'sl5/x86_64', 'sl6/i386', 'sl6/x86_64'];

const cases: [string[], string[], string[]][] = [
  [['auto'], ['all'], AUTO],
  [['all'], ['all'], ALL],
  [['auto'], ['i386'], ['f13/i386', 'sl5/i386']],
  [['all'], ['i386', 'x86_64'], ALL],
  [['all', '!sl6'], ['all'], AUTO],
  [['all'], ['all', '!i386'], ['f13/x86_64', 'sl5/x86_64', 'sl6/x86_64']],
  [['auto', '!sl5'], ['all'], ['f13/i386', 'f13/x86_64']],
  [['auto', 'foo'], ['all'], AUTO],
  [['auto', '!foo'], ['all'], AUTO],
  [['auto'], ['all', 'foo'], AUTO],
  [['auto'], ['all', '!foo'], AUTO],
  [['auto', 'sl6'], ['all'], ALL],
  [['!sl5'], ['all'], ['f13/i386', 'f13/x86_64']],
  [['auto'], ['!i386'], ['f13/x86_64', 'sl5/x86_64']],
  // Names match case-insensitively; the keywords do not.
  [['SL6'], ['X86_64'], ['sl6/x86_64']],
  [['ALL'], ['all'], []],
  [[], [], AUTO],
];

describe('target selection follows the original rules', () => {
  for (const [platforms, archs, expected] of cases) {
    it(`platforms [${platforms.join(', ')}] archs [${archs.join(', ')}]`, () => {
      const got = selectTargets(available, platforms, archs, 'rpm').map((t) => `${t.platform}/${t.arch}`);
      assert.deepEqual(got, expected);
    });
  }

  it('selects nothing when no platform is active', () => {
    assert.deepEqual(selectTargets([], ['all'], ['all'], 'rpm'), []);
  });

  it("selects only platforms of the job's family, its filters applying among them", () => {
    const pick = (platforms: string[], family: 'rpm' | 'deb') =>
      selectTargets(available, platforms, ['all'], family).map((t) => `${t.platform}/${t.arch}`);
    assert.deepEqual(pick(['auto'], 'deb'), ['deb12/x86_64']);
    assert.deepEqual(pick(['all', '!deb12'], 'deb'), []);
    assert.deepEqual(pick(['deb12'], 'rpm'), []);
    assert.deepEqual(pick(['sl6', 'deb12'], 'rpm'), ['sl6/i386', 'sl6/x86_64']);
  });
});

describe('filter warnings', () => {
  const platforms = [
    { name: 'el9', arch: 'x86_64', active: true, family: 'rpm' },
    { name: 'el8', arch: 'x86_64', active: false, family: 'rpm' },
    { name: 'el8', arch: 'ppc64le', active: false, family: 'rpm' },
    { name: 'deb12', arch: 'x86_64', active: true, family: 'deb' },
  ] as const;
  it('name filters that match no platform or arch, or only inactive ones', () => {
    assert.deepEqual(
      filterWarnings(
        { platforms: ['auto', 'el9', '!el8', 'f40'], archs: ['all', 'x86_64', 'ppc64le', 's390x'], family: 'rpm' },
        platforms,
      ),
      [
        "platform 'el8' is not active",
        "platform 'f40' is unknown",
        "architecture 'ppc64le' has no active platform",
        "architecture 's390x' is unknown",
      ],
    );
    assert.deepEqual(filterWarnings({ platforms: ['EL9'], archs: [], family: 'rpm' }, platforms), []);
    // A platform that builds the other family's packages says so, rather than being called unknown.
    assert.deepEqual(filterWarnings({ platforms: ['deb12'], archs: [], family: 'rpm' }, platforms), [
      "platform 'deb12' builds deb packages, and this job's are rpm",
    ]);
  });
});
