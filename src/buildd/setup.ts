import type { CommandSpec, Config } from '../config/load-config.ts';
import { findExecutable } from '../util/child.ts';
import { ErrorCode, PkgForgeError, messageOf } from '../util/errors.ts';
import { CommandPublisher } from './commands/command.ts';
import { CreaterepoPublisher } from './commands/createrepo.ts';
import { RepreproPublisher } from './commands/reprepro.ts';
import { farmSigningKey, type SigningKey } from './signing-key.ts';
import { EmailReport } from './commands/email.ts';
import { MockBuilder } from './commands/mock.ts';
import { RpmbuildBuilder } from './commands/rpmbuild.ts';
import { LintianCheck } from './commands/lintian.ts';
import { RpmlintCheck } from './commands/rpmlint.ts';
import { SbuildBuilder } from './commands/sbuild.ts';
import { RpmsignSigner } from './commands/rpmsign.ts';
import { WebhookReport } from './commands/webhook.ts';
import { setUpSandbox, type SandboxSetup } from './sandbox-setup.ts';
import type { PhaseCommand, PublishCommand, ReportCommand } from './phases.ts';

/** A build daemon's settings, from buildd.yml and buildd-<name>.yml on top of pkgforge.yml. */
export interface BuilddSettings {
  builder: () => PhaseCommand;
  checks: PhaseCommand[];
  signers: PhaseCommand[];
  publishers: PublishCommand[];
  reports: ReportCommand[];
  timeoutSeconds: number;
  errorPolicy: 'retry' | 'immediate';
  pollSeconds: number;
  leaseRenewalMs: number;
  leaseExpiryMs: number;
  stopGraceSeconds: number;
  /** The sandbox of builder `name` (serving `platform`), set up once and then reused. */
  sandbox: (name: string, platform: string) => Promise<SandboxSetup>;
  /** The builder command cannot run inside the bwrap sandbox (mock needs root for its chroots). */
  builderNeedsHost: boolean;
}

function make<T>(phase: string, spec: CommandSpec, known: Record<string, (params: Record<string, unknown>) => T>): T {
  // The original's module names (RPM, RPMLint, PkgSubmit, Email) are accepted too.
  const factory = known[spec.name];
  if (!factory)
    throw new PkgForgeError(
      ErrorCode.config,
      `Unknown ${phase} '${spec.name}'; known: ${Object.keys(known).join(', ')}`,
    );
  try {
    return factory(spec.params);
  } catch (err) {
    throw new PkgForgeError(ErrorCode.config, `Cannot set up the ${phase} '${spec.name}': ${messageOf(err)}`);
  }
}

/** A command parameter that is a name or a list of names. */
function stringList(value: unknown, name: string): string[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v) => typeof v === 'string')) throw new Error(`'${name}' must be a name or a list of names`);
  return list as string[];
}

export function builddSettings(config: Config): BuilddSettings {
  const b = config.buildd;
  const builders: Record<string, (p: Record<string, unknown>) => PhaseCommand> = {
    rpmbuild: () => new RpmbuildBuilder(),
    rpm: () => new RpmbuildBuilder(),
    mock: (p: Record<string, unknown>) => new MockBuilder(p as { root?: string }),
    sbuild: () => new SbuildBuilder({ buildroots: config.buildroots, repos: config.repos }),
  };
  // Validate now, build a fresh one per task (it keeps per-task state).
  make('builder', b.builder, builders);
  const checks = b.checks.map((s) =>
    make<PhaseCommand>('check', s, {
      rpmlint: (p) => new RpmlintCheck(p as { strict?: boolean }),
      lintian: (p) => new LintianCheck(p as { strict?: boolean }),
    }),
  );
  // Made (or found) once, on first use, and shared by everything that signs.
  let key: Promise<SigningKey> | null = null;
  const signingKey = () =>
    (key ??= farmSigningKey(config.signing.gnupgHome, config.signing.key).catch((err: unknown) => {
      key = null; // the next publish tries again
      throw err;
    }));
  const signers = b.signers.map((s) =>
    make<PhaseCommand>('signer', s, { rpmsign: (p) => new RpmsignSigner(p as { key?: string }, signingKey) }),
  );
  const publishers = b.publishers.map((s) =>
    make<PublishCommand>('publisher', s, {
      createrepo: (p) =>
        new CreaterepoPublisher(
          typeof p.repos === 'string' ? p.repos : config.repos,
          signers.find((s): s is RpmsignSigner => s instanceof RpmsignSigner)?.publicKey ?? null,
        ),
      reprepro: (p) =>
        new RepreproPublisher(
          typeof p.repos === 'string' ? p.repos : config.repos,
          signingKey,
          stringList(p.allow_replace, 'allow_replace'),
        ),
      command: (p) => new CommandPublisher(p),
      pkgsubmit: (p) => new CommandPublisher({ command: p.command ?? ['/usr/sbin/pkgsubmit', '-x', '-B', '{bucket}'] }),
    }),
  );
  const reports = b.reports.map((s) =>
    make<ReportCommand>('report', s, {
      email: (p) => new EmailReport(p),
      webhook: (p) => new WebhookReport(p as { url?: string }),
    }),
  );
  const sandboxes = new Map<string, Promise<SandboxSetup>>();
  return {
    builder: () => make('builder', b.builder, builders),
    sandbox: (name, platform) => {
      const key = `${name}\0${platform}`;
      if (!sandboxes.has(key)) sandboxes.set(key, setUpSandbox(config, name, platform));
      return sandboxes.get(key)!;
    },
    builderNeedsHost: b.builder.name === 'mock',
    checks,
    signers,
    publishers,
    reports,
    timeoutSeconds: b.timeoutSeconds,
    errorPolicy: b.errorPolicy,
    pollSeconds: config.poll,
    leaseRenewalMs: b.leaseRenewalMs,
    leaseExpiryMs: b.leaseExpiryMs,
    stopGraceSeconds: b.stopGraceSeconds,
  };
}

/** The tools a daemon's commands need that cannot be found, each with the command that needs it. */
export async function missingTools(settings: BuilddSettings): Promise<string[]> {
  const commands = [
    settings.builder(),
    ...settings.checks,
    ...settings.signers,
    ...settings.publishers,
    ...settings.reports,
  ];
  const missing: string[] = [];
  for (const c of commands)
    for (const tool of c.tools) if (!(await findExecutable(tool))) missing.push(`${tool} (needed by ${c.name})`);
  return missing;
}
