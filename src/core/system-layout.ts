/**
 * A system install's users, directories, owners and modes: each role its own Unix user, so the
 * accepted copies can be trusted (only the incoming processor writes there) and builds own nothing.
 */
export const SYSTEM_USERS = {
  /** The incoming processor: the only writer of accepted/. */
  incoming: 'pkgforge',
  /** The web server: may write only into incoming/ (through the submit group). */
  web: 'pkgforge-web',
  /** Build daemons: read accepted/, write results/ and repos/. */
  buildd: 'pkgforge-buildd',
  /** Builds: owns nothing; the daemons switch to it to run a build. */
  build: 'pkgforge-build',
} as const;

/** The group whose members may drop jobs into incoming/ (the web server; local submitters an admin adds). */
export const SUBMIT_GROUP = 'pkgforge-submit';

export interface SystemDirectory {
  path: string;
  owner: string;
  group: string;
  mode: number;
}

export function systemDirectories(): SystemDirectory[] {
  const u = SYSTEM_USERS;
  return [
    { path: '/etc/pkgforge', owner: 'root', group: 'root', mode: 0o755 },
    { path: '/var/lib/pkgforge', owner: 'root', group: 'root', mode: 0o755 },
    // setgid keeps entries in the submit group; sticky stops submitters removing each other's jobs.
    { path: '/var/lib/pkgforge/incoming', owner: u.incoming, group: SUBMIT_GROUP, mode: 0o3770 },
    { path: '/var/lib/pkgforge/accepted', owner: u.incoming, group: u.incoming, mode: 0o755 },
    { path: '/var/lib/pkgforge/results', owner: u.buildd, group: u.buildd, mode: 0o755 },
    { path: '/var/lib/pkgforge/repos', owner: u.buildd, group: u.buildd, mode: 0o755 },
    // Traversable, not listable: the build user reaches its own workspace by name only.
    { path: '/var/tmp/pkgforge', owner: u.buildd, group: u.buildd, mode: 0o711 },
    { path: '/var/log/pkgforge', owner: 'root', group: 'root', mode: 0o755 },
  ];
}
