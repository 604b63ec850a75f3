// What every trace-operator command receives from cli.ts: its arguments, the
// environment, output streams and a way to hear process signals, so that no
// module reads process globals itself and commands can be tested in-process.
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGURG';

export interface CommandContext {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  signal: AbortSignal;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Registers a handler for a process signal (SIGINT, SIGTERM, SIGURG: the runner's stop request). */
  onSignal: (signal: StopSignal, handler: () => void) => void;
}

/** A command returns its exit code; it never calls process.exit. */
export type CommandMain = (ctx: CommandContext) => Promise<number>;
