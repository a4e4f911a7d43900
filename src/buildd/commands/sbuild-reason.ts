/**
 * What a failed sbuild run says about why, read from the end of its output: the summary's
 * `Status:` and `Fail-Stage:` lines, and for the stage that installs build dependencies, apt's
 * words about each dependency it could not install. A user reads "missing build dependency
 * libfoo-dev", not an exit code.
 */
export interface SbuildFailure {
  /** `successful`, `attempted` (the build failed), `given-back` (it could not start: dependencies, fetching), … */
  status: string | null;
  /** sbuild's stage: `install-deps`, `build`, `fetch-src`, `apt-get-update`, … */
  stage: string | null;
  /** Build dependencies apt could not install, as apt wrote them (`libfoo-dev but it is not installable`). */
  missing: string[];
  /** The last line of the build that looks like the error, for the `build` stage. */
  errorLine: string | null;
}

/** Reads a failure from sbuild's output (its last part is enough: the summary is at the end). */
export function readSbuildFailure(output: string): SbuildFailure {
  const field = (name: string) => [...output.matchAll(new RegExp(`^${name}: (\\S+)\\s*$`, 'gm'))].at(-1)?.[1] ?? null;
  const missing = new Set<string>();
  // apt, on the dummy package sbuild makes of the Build-Depends:
  //  sbuild-build-depends-main-dummy : Depends: libfoo-dev but it is not installable
  //                                    Depends: bar (>= 2) but 1.0-1 is to be installed
  let inDummy = false;
  for (const line of output.split('\n')) {
    const m = line.match(/^\s*(sbuild-build-depends-\S+ : )?Depends: (.+?)\s*$/);
    if (m?.[1]) inDummy = true;
    else if (!m) inDummy = false;
    if (m && inDummy) missing.add(m[2]!);
  }
  return {
    status: field('Status'),
    stage: field('Fail-Stage'),
    missing: [...missing],
    errorLine: lastErrorLine(output),
  };
}

/** The last line before sbuild's summary that reads like the build's error (make's, a compiler's, dh's). */
function lastErrorLine(output: string): string | null {
  const body = output.split(/^\|\s*(?:Cleanup|Summary)\s*\|$/m)[0] ?? output;
  const lines = body.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!;
    if (
      /^(dpkg-buildpackage|dpkg-source|dh_[a-z_]+|make(\[\d+\])?): (error|\*\*\*)|(^|\s)error:|\*\*\* .*Error \d+|command not found/i.test(
        l,
      )
    )
      return l.length > 300 ? `${l.slice(0, 300)}…` : l;
  }
  return null;
}

/** The reason a package failed, in words, from what sbuild said and how it ended. */
export function sbuildReason(file: string, f: SbuildFailure, exitCode: number | null): string {
  if (f.stage === 'install-deps' && f.missing.length > 0)
    return `${file}: missing build dependenc${f.missing.length === 1 ? 'y' : 'ies'} ${f.missing.join('; ')}`;
  if (f.stage === 'install-deps')
    return `${file}: its build dependencies could not be installed (sbuild stage install-deps)`;
  if (f.stage === 'build' || f.stage === 'check')
    return `${file}: the build failed (sbuild stage ${f.stage})${f.errorLine ? `: ${f.errorLine}` : ''}`;
  if (f.stage) return `${file}: sbuild failed at its stage ${f.stage}${f.status ? ` (${f.status})` : ''}`;
  return `${file}: sbuild failed with exit code ${exitCode}`;
}
