/**
 * Why a build failed, in the words of its own log: the line a person would look for first, so a
 * failed task's reason is the cause ("makeinfo: command not found (in %build)") rather than
 * "Failed to build X". And how a job's reason sums up its failed tasks.
 */

/**
 * rpmbuild's last word on a failed scriptlet: `error: Bad exit status from /var/tmp/rpm-tmp.X (%build)`.
 * Found anywhere in a line: rpm writes its `error: ` prefix apart from the message, on stderr, while
 * the build's own output comes on stdout, so the two may interleave mid-line.
 */
const BAD_EXIT = /Bad exit status from \S+ \((%\w+)\)/;
/** The shell's prefix on a scriptlet's own errors: `/var/tmp/rpm-tmp.X: line 31: ` (bash), `…: 31: ` (dash). */
const SCRIPT_PREFIX = /^\S*rpm-tmp\.\w+:(?: line)? \d+: /;
/**
 * Lines that are not the build speaking: the shell's `+ cmd` trace, PkgForge's own lines, rpmbuild's
 * stage headers and its summary of errors (which stdout and stderr may interleave in any order).
 */
const NOISE = [/^\+ /, /^\[\d{4}-/, /^Executing\(/, /^RPM build errors:/, /^error:\s*$/, BAD_EXIT];

/** At most this many characters of a cause: a reason is a line, not a log. */
const MAX_CAUSE = 300;

/** The cause of a failed rpmbuild from the tail of its output, or null when it says nothing usable. */
export function rpmbuildFailureCause(tail: string): string | null {
  const lines = tail
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trimEnd())
    .filter((l) => l.trim() !== '');
  const stage = lines
    .map((l) => BAD_EXIT.exec(l)?.[1])
    .filter((s) => s !== undefined)
    .pop();
  if (stage) {
    // The scriptlet's own last line: after it failed rpmbuild says only its verdict.
    const said = lines.filter((l) => !NOISE.some((n) => n.test(l))).pop();
    return clip(said ? `${plain(said)} (in ${stage})` : `the ${stage} stage failed`);
  }
  // rpmbuild's own errors: a file not found in %files, unpackaged files, a bad spec.
  const errors = lines.filter((l) => l.startsWith('error: '));
  const first = errors[0];
  return first
    ? clip(first.slice('error: '.length) + (errors.length > 1 ? ` (and ${errors.length - 1} more errors)` : ''))
    : null;
}

/** A shell's error without the script's name and line, dash's `X: not found` said as bash says it. */
const plain = (line: string) =>
  line
    .replace(/^error: /, '')
    .replace(SCRIPT_PREFIX, '')
    .replace(/^(\S+): not found$/, '$1: command not found');

const clip = (s: string) => (s.length > MAX_CAUSE ? `${s.slice(0, MAX_CAUSE - 1)}…` : s);

/** A job's reason from its failed tasks: `2 of 3 tasks failed: el9/x86_64: …; f40/x86_64: …`. */
export function jobFailureSummary(
  total: number,
  failed: readonly { platform: string; arch: string; reason: string | null }[],
): string | null {
  if (failed.length === 0) return null;
  const head = total === 1 ? 'the task failed' : `${failed.length} of ${total} tasks failed`;
  const each = failed.map((t) => `${t.platform}/${t.arch}: ${t.reason ?? 'no reason recorded'}`);
  return clip(`${head}: ${each.join('; ')}`);
}
