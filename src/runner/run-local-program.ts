// What run-local runs, and its error: shared by run-local.ts and the
// manifest loader it imports lazily (run-local-manifest.ts), so neither
// imports the other's module for them.

/** A failure of run-local that names what to do; printed without a stack. */
export class RunLocalError extends Error {
  override name = 'RunLocalError';
}

export interface LocalProgram {
  program: string;
  args: string[];
  deadline: number | undefined;
  gracePeriod: number;
  /** Where the program came from, for messages. */
  source: string;
}
