// From Kubernetes objects to chart inputs: which maps of a TraceJob become
// charts, and how a TraceTrigger's runs become a fleet chart or a heatmap.
// Pure; the page and `trace-operator plot` both use it.
import type { Histogram, MapResult } from '../tracejob/result.ts';
import type { FleetChartInput, HeatmapChartInput, HistogramChartInput } from './charts.ts';
import { firstHistogram, histogramMap, runHistograms, type TraceTriggerLike, type TriggerRun } from './trigger-runs.ts';

/** The parts of a TraceJob the charts read. */
export interface TraceJobLike {
  metadata: { name?: string; namespace?: string };
  status?: {
    phase?: string;
    node?: string;
    result?: { outcome?: string; maps?: MapResult[] };
  };
}

/** Most charts drawn for one TraceJob (a keyed histogram map has one histogram per key). */
export const MAX_HISTOGRAM_CHARTS = 12;

function label(h: Histogram, map: MapResult): string {
  return h.key === undefined ? map.name : `${map.name}[${h.key}]`;
}

/** One chart per histogram of the TraceJob's result (keyed maps: one per key), at most MAX_HISTOGRAM_CHARTS. */
export function traceJobCharts(tj: TraceJobLike, width?: number): HistogramChartInput[] {
  const result = tj.status?.result;
  const where = [`${tj.metadata.namespace ?? ''}/${tj.metadata.name ?? ''}`, tj.status?.node, result?.outcome]
    .filter((s): s is string => s !== undefined && s !== '')
    .join(' · ');
  const out: HistogramChartInput[] = [];
  for (const map of result?.maps ?? []) {
    if (map.kind !== 'histogram') continue;
    for (const h of map.histograms ?? []) {
      if (out.length >= MAX_HISTOGRAM_CHARTS) return out;
      out.push({
        title: label(h, map),
        subtitle: `${where} · ${h.total} samples`,
        mapName: map.name,
        histogram: h,
        ...(width === undefined ? {} : { width }),
      });
    }
  }
  return out;
}

/** A run's merged histogram and each node's own, for the fleet chart. */
export function fleetRunChart(
  trigger: TraceTriggerLike,
  run: TriggerRun,
  traceJobs: ReadonlyMap<string, TraceJobLike>,
  options: { mapName?: string; width?: number } = {},
): FleetChartInput | undefined {
  const merged = histogramMap(run.result?.maps, options.mapName);
  const mapName =
    merged?.name ??
    options.mapName ??
    [...traceJobs.values()].map((tj) => histogramMap(tj.status?.result?.maps)?.name).find((n) => n !== undefined);
  if (mapName === undefined) return undefined;
  const nodes = (run.traceJobs ?? []).map((ref) => {
    const tj = traceJobs.get(ref.name);
    const histogram = firstHistogram(histogramMap(tj?.status?.result?.maps, mapName));
    const failure = run.result?.failedNodes?.find((f) => f.traceJob === ref.name)?.message;
    const phase = [tj?.status?.phase ?? ref.phase ?? (tj === undefined ? 'TraceJob gone' : undefined), failure]
      .filter((x) => x !== undefined)
      .join(': ');
    return {
      node: ref.node ?? tj?.status?.node ?? ref.name,
      traceJob: ref.name,
      ...(phase === '' ? {} : { phase }),
      ...(histogram === undefined ? {} : { histogram }),
    };
  });
  const failed = nodes.filter((n) => n.histogram === undefined).length;
  return {
    title: `${trigger.metadata.name ?? ''} · run ${run.id}`,
    subtitle: `${mapName} merged over ${nodes.length - failed} of ${nodes.length} nodes · ${run.time}${run.by === undefined ? '' : ` · by ${run.by}`}`,
    mapName,
    merged: firstHistogram(merged),
    nodes,
    ...(options.width === undefined ? {} : { width: options.width }),
  };
}

/** The trigger's runs as a heatmap of one histogram map (the first one found unless named). */
export function triggerHeatmap(
  trigger: TraceTriggerLike,
  options: { mapName?: string; width?: number } = {},
): HeatmapChartInput | undefined {
  const series = runHistograms(trigger.status?.runs ?? [], options.mapName);
  const first = series[0];
  if (first === undefined) return undefined;
  const schedule = trigger.spec?.schedule;
  return {
    title: `${trigger.metadata.name ?? ''} · ${first.mapName} over ${series.length} runs`,
    subtitle: `${trigger.metadata.namespace ?? ''}/${trigger.metadata.name ?? ''}${schedule === undefined ? '' : ` · schedule "${schedule}"`} · merged histogram of each run`,
    mapName: first.mapName,
    runs: series.map((s) => ({ id: s.run.id, time: s.time, histogram: s.histogram })),
    ...(options.width === undefined ? {} : { width: options.width }),
  };
}
