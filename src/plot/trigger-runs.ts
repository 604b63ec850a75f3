// The part of a TraceTrigger's status the charts read (design §7):
// status.runs[] = { id, time, by, traceJobs: [{ name, node, phase }], result: <merged maps> }.
// Declared here, structurally, so the plots and the dashboard do not depend
// on the TraceTrigger package; any object of that shape fits.
import type { Histogram, MapResult } from '../tracejob/result.ts';

export interface RunTraceJob {
  name: string;
  node?: string;
  phase?: string;
}

export interface TriggerRun {
  id: string;
  time: string;
  by?: string;
  phase?: string;
  traceJobs?: RunTraceJob[];
  /** The maps of the run's TraceJobs merged (histograms bucket by bucket), and which nodes failed. */
  result?: {
    maps?: MapResult[];
    partial?: boolean;
    failedNodes?: { node: string; traceJob: string; message?: string }[];
  } | null;
}

export interface TraceTriggerLike {
  metadata: { name?: string; namespace?: string; creationTimestamp?: string };
  spec?: { schedule?: string; alert?: unknown; nodeSelector?: unknown };
  status?: { runs?: TriggerRun[]; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

/** The first histogram map of a result, or the one named `mapName`. */
export function histogramMap(maps: readonly MapResult[] | undefined, mapName?: string): MapResult | undefined {
  return (maps ?? []).find(
    (m) => m.kind === 'histogram' && (m.histograms?.length ?? 0) > 0 && (mapName === undefined || m.name === mapName),
  );
}

/** The unkeyed histogram of a map, or its first keyed one. */
export function firstHistogram(map: MapResult | undefined): Histogram | undefined {
  return map?.histograms?.find((h) => h.key === undefined) ?? map?.histograms?.[0];
}

/** Runs oldest first, each with its histogram of `mapName` (or the first histogram map). */
export function runHistograms(
  runs: readonly TriggerRun[],
  mapName?: string,
): { run: TriggerRun; time: Date; mapName: string; histogram: Histogram }[] {
  const out: { run: TriggerRun; time: Date; mapName: string; histogram: Histogram }[] = [];
  const name = mapName ?? runs.map((r) => histogramMap(r.result?.maps)?.name).find((n) => n !== undefined);
  for (const run of runs) {
    const map = histogramMap(run.result?.maps, name);
    const histogram = firstHistogram(map);
    const time = new Date(run.time);
    if (map === undefined || histogram === undefined || Number.isNaN(time.getTime())) continue;
    out.push({ run, time, mapName: map.name, histogram });
  }
  return out.sort((a, b) => a.time.getTime() - b.time.getTime());
}

/** The runs newest first (status.runs is kept newest first; this does not rely on it). */
export function newestFirst(runs: readonly TriggerRun[]): TriggerRun[] {
  return [...runs].sort((a, b) => new Date(b.time).getTime() - new Date(a.time).getTime());
}

/** True for a phase that means a node's trace gave no result. */
export function isFailedPhase(phase: string | undefined): boolean {
  return phase === 'Failed';
}
