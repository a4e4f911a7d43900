/**
 * The Debian suite (codename) a platform's build root is made from, by the platform's name:
 * `deb12` is bookworm. Platforms are named after the release's number, as RPM platforms are
 * (`el9`); the codename is what mirrors and sbuild know.
 */
const SUITES: Readonly<Record<string, string>> = {
  deb9: 'stretch',
  deb10: 'buster',
  deb11: 'bullseye',
  deb12: 'bookworm',
  deb13: 'trixie',
  deb14: 'forky',
};

/** The suite of a Debian platform, or null when its name is not one of Debian's numbered releases. */
export function debianSuite(platform: string): string | null {
  return SUITES[platform.replace(/^debian/, 'deb')] ?? null;
}

/** Every platform name a suite is known for, for messages. */
export const KNOWN_DEBIAN_PLATFORMS: readonly string[] = Object.keys(SUITES);
