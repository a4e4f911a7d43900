/**
 * A problem with a job an incoming entry holds (its manifest or its files). `soft` problems (a file
 * not there yet, too short, a checksum that does not match yet) may go away while the submitter is
 * still copying, so the entry waits until the grace period ends; hard ones never will.
 */
export class JobProblem extends Error {
  override name = 'JobProblem';
  constructor(
    message: string,
    readonly soft: boolean,
  ) {
    super(message);
  }
}
