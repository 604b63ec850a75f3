// /proc/<pid>/stat, parsed once for the runner: the container's processes
// (container-pid.ts) and the bpftrace the launcher handed over
// (bpftrace-process.ts) both read it.

export interface ProcStat {
  comm: string;
  state: string;
  ppid: number;
  /** The wait status, as waitpid(2) reports it (field 52; meaningful once the state is Z). */
  waitStatus: number;
}

/** Parses "pid (comm) state ppid ... exit_code"; comm may hold spaces and parentheses. Undefined when it is not such a line. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return undefined;
  const fields = text
    .slice(close + 2)
    .trim()
    .split(' ');
  return {
    comm: text.slice(open + 1, close),
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    waitStatus: Number(fields.at(-1)),
  };
}
