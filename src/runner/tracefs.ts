// Making sure bpftrace can see tracepoints: it reads tracepoint formats from
// tracefs (/sys/kernel/tracing, or /sys/kernel/debug/tracing via debugfs),
// which a container's fresh /sys does not have mounted. Without it bpftrace
// reports "tracepoint not found" for every tracepoint.
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type MountFn = (fstype: 'tracefs' | 'debugfs', target: string) => Promise<void>;

/** Mounts with mount(8), the way an administrator would. */
export const mountWithCommand: MountFn = async (fstype, target) => {
  await run('mount', ['-t', fstype, fstype, target]);
};

export interface EnsureTracingOptions {
  /** Where sysfs is mounted; tests pass a temporary directory. */
  sysRoot?: string;
  mount?: MountFn;
}

export interface EnsureTracingReport {
  /** The tracing directory found or mounted, or undefined when none could be. */
  tracingDir: string | undefined;
  mounted: string[];
  /** Problems met, each a sentence for stderr. */
  warnings: string[];
}

async function hasEvents(dir: string): Promise<boolean> {
  try {
    return (await stat(path.join(dir, 'events'))).isDirectory();
  } catch {
    return false;
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Mounts tracefs at <sys>/kernel/tracing and debugfs at <sys>/kernel/debug
 * when they are not there. Never throws: a failure is reported as a warning
 * and bpftrace then says which probes it cannot find.
 */
export async function ensureTracingFs(options: EnsureTracingOptions = {}): Promise<EnsureTracingReport> {
  const sysRoot = options.sysRoot ?? '/sys';
  const mount = options.mount ?? mountWithCommand;
  const tracing = path.join(sysRoot, 'kernel', 'tracing');
  const debug = path.join(sysRoot, 'kernel', 'debug');
  const report: EnsureTracingReport = { tracingDir: undefined, mounted: [], warnings: [] };

  const attempt = async (fstype: 'tracefs' | 'debugfs', target: string): Promise<void> => {
    if (!(await isDirectory(target))) return;
    try {
      await mount(fstype, target);
      report.mounted.push(target);
    } catch (error) {
      const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
      report.warnings.push(
        `could not mount ${fstype} at ${target} (${detail}); run the trace privileged or mount it on the node`,
      );
    }
  };

  if (!(await hasEvents(tracing))) await attempt('tracefs', tracing);
  // bpftrace v0.17 also uses debugfs's tracing directory for kprobe and uprobe events.
  if (!(await hasEvents(path.join(debug, 'tracing'))) && !(await isDirectory(path.join(debug, 'tracing'))))
    await attempt('debugfs', debug);

  for (const dir of [tracing, path.join(debug, 'tracing')]) {
    if (await hasEvents(dir)) {
      report.tracingDir = dir;
      break;
    }
  }
  if (report.tracingDir === undefined) {
    report.warnings.push(
      `no tracefs found at ${tracing} or ${path.join(debug, 'tracing')}: tracepoint probes will not be found`,
    );
  }
  return report;
}
