import { statfs } from 'node:fs/promises';
import { spaceProblem, type FreeSpace, type SpaceReserve } from '../core/limits.ts';
import { printable } from '../core/names.ts';

/**
 * The farm has no room for a job's copy now. Not the submitter's fault: the job is kept, with the
 * reason on it, and taken on a later pass, whatever the grace period.
 */
export class SpaceProblem extends Error {}

/** What `statfs` says of the file system holding `dir`. */
export async function freeSpaceOf(dir: string): Promise<FreeSpace> {
  const s = await statfs(dir);
  return { available: s.bavail * s.bsize, total: s.blocks * s.bsize };
}

/** A file system error that says the disk (or the user's quota) is full while writing `what`, as a SpaceProblem; else null. */
export function asSpaceProblem(err: unknown, what: string): SpaceProblem | null {
  if (err instanceof SpaceProblem) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return null;
  return new SpaceProblem(
    `waiting for space in the accepted directory: it filled up (${code}) while writing ${printable(what)}; the job is kept and taken once there is room`,
  );
}

export interface SpaceClaim {
  /** The copy has written `bytes` so far. */
  wrote(bytes: number): void;
  release(): void;
}

/**
 * Free space in the accepted file system, as the copies of one processor see it: before each copy,
 * the file system's free space less what copies in flight have still to write must hold the copy
 * and the reserve. Only one processor writes accepted (the lock), so this is all the farm's writing there.
 */
export class AcceptedSpace {
  private pending = 0;

  constructor(
    private readonly accepted: string,
    private readonly reserve: SpaceReserve,
    private readonly measure: (dir: string) => Promise<FreeSpace> = freeSpaceOf,
  ) {}

  /** Room for a copy of `size` bytes of `file`, or a SpaceProblem saying why there is none. */
  async claim(file: string, size: number): Promise<SpaceClaim> {
    const space = await this.measure(this.accepted);
    const problem = spaceProblem(file, size, space, this.pending, this.reserve);
    if (problem) throw new SpaceProblem(problem);
    let left = size;
    this.pending += size;
    const settle = (now: number) => {
      if (now >= left) return;
      this.pending -= left - now;
      left = now;
    };
    return { wrote: (bytes) => settle(Math.max(0, size - bytes)), release: () => settle(0) };
  }
}
