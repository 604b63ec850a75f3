// `trace-operator plot tracejob/NAME | tracetrigger/NAME`: the dashboard's
// charts as an SVG or PNG file (or on stdout), read with the user's own
// kubeconfig, or from a saved object (`kubectl get tj NAME -o json`) with -f.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { CommandMain } from '../command.ts';
import { KubeClient, loadKubeConfig, resourcePath } from '../runtime/kube-client.ts';
import { API_GROUP, API_VERSION, PLURAL } from '../tracejob/constants.ts';
import { fleetChart, heatmapChart, histogramChart } from './charts.ts';
import { fleetRunChart, traceJobCharts, triggerHeatmap, type TraceJobLike } from './from-objects.ts';
import { Plot, chartDocument, standaloneSvg, svgToPng } from './render.ts';
import { newestFirst, type TraceTriggerLike } from './trigger-runs.ts';
import { errorMessage } from '../error-message.ts';

export const TRIGGER_PLURAL = 'tracetriggers';

const USAGE = `usage: trace-operator plot tracejob/NAME | tracetrigger/NAME [flags]

Draws a TraceJob's histograms (bars with p50/p90/p99), or a TraceTrigger's
runs (a heatmap of the runs, or one run's merged and per-node histograms),
as the dashboard does.

flags:
  -n, --namespace NS     namespace of the object (default: the kubeconfig context's, else default)
  -o, --output FILE      FILE.svg, FILE.png, or - for stdout (default -)
      --format svg|png   format when writing to stdout (default svg; a FILE's extension decides otherwise)
      --map NAME         the histogram map to draw (default: all of a TraceJob's; a trigger's first)
      --run ID           tracetrigger: draw this run's merged and per-node histograms
      --heatmap          tracetrigger: draw the heatmap of its runs (the default with 2 or more runs)
  -f, --file FILE        read the object from FILE (JSON or YAML as kubectl prints it; - for stdin) instead of the cluster
      --kubeconfig FILE  kubeconfig (default: $KUBECONFIG, then ~/.kube/config)
      --width PX         chart width (default 760)
  -h, --help             show this help
`;

export interface PlotRequest {
  kind: 'tracejob' | 'tracetrigger';
  name: string;
}

/** Parses "tracejob/NAME" (also tj/, tracejobs/, tracetrigger/, tt/). */
export function parseTarget(text: string): PlotRequest {
  const [kind, name, ...rest] = text.split('/');
  if (name === undefined || name === '' || rest.length > 0)
    throw new Error(`expected tracejob/NAME or tracetrigger/NAME, got '${text}'`);
  const k = (kind ?? '').toLowerCase();
  if (['tracejob', 'tracejobs', 'tj'].includes(k)) return { kind: 'tracejob', name };
  if (['tracetrigger', 'tracetriggers', 'tt'].includes(k)) return { kind: 'tracetrigger', name };
  throw new Error(`unknown kind '${kind}': plot draws tracejob/NAME or tracetrigger/NAME`);
}

export interface Source {
  traceJob(namespace: string, name: string): Promise<TraceJobLike | undefined>;
  traceTrigger(namespace: string, name: string): Promise<TraceTriggerLike | undefined>;
}

/** The charts (as one SVG document) for a target read from `source`. */
export async function plotSvg(
  source: Source,
  target: PlotRequest,
  namespace: string,
  options: { mapName?: string; run?: string; heatmap?: boolean; width?: number } = {},
): Promise<string> {
  const document = chartDocument();
  const width = options.width;
  if (target.kind === 'tracejob') {
    const tj = await source.traceJob(namespace, target.name);
    if (tj === undefined) throw new Error(`tracejob ${namespace}/${target.name} not found`);
    const charts = traceJobCharts(tj, width).filter(
      (c) => options.mapName === undefined || c.mapName === options.mapName,
    );
    if (charts.length === 0)
      throw new Error(
        `tracejob ${namespace}/${target.name} has no histogram to draw${tj.status?.phase === undefined ? '' : ` (phase ${tj.status.phase})`}${options.mapName === undefined ? '' : ` named ${options.mapName}`}: a histogram map appears in status.result when the trace has ended`,
      );
    return standaloneSvg(charts.flatMap((c) => histogramChart(Plot, document, c)));
  }
  const trigger = await source.traceTrigger(namespace, target.name);
  if (trigger === undefined) throw new Error(`tracetrigger ${namespace}/${target.name} not found`);
  const runs = trigger.status?.runs ?? [];
  const mapOptions = {
    ...(options.mapName === undefined ? {} : { mapName: options.mapName }),
    ...(width === undefined ? {} : { width }),
  };
  if (options.run === undefined && (options.heatmap === true || runs.length >= 2)) {
    const heatmap = triggerHeatmap(trigger, mapOptions);
    if (heatmap === undefined)
      throw new Error(`tracetrigger ${namespace}/${target.name} has no run with a histogram to draw yet`);
    return standaloneSvg(heatmapChart(Plot, document, heatmap));
  }
  const run = options.run === undefined ? newestFirst(runs)[0] : runs.find((r) => r.id === options.run);
  if (run === undefined)
    throw new Error(
      options.run === undefined
        ? `tracetrigger ${namespace}/${target.name} has no runs yet`
        : `tracetrigger ${namespace}/${target.name} has no run '${options.run}' (runs: ${runs.map((r) => r.id).join(', ') || 'none'})`,
    );
  const traceJobs = new Map<string, TraceJobLike>();
  for (const ref of run.traceJobs ?? []) {
    const tj = await source.traceJob(namespace, ref.name);
    if (tj !== undefined) traceJobs.set(ref.name, tj);
  }
  const fleet = fleetRunChart(trigger, run, traceJobs, mapOptions);
  if (fleet === undefined)
    throw new Error(`run ${run.id} of tracetrigger ${namespace}/${target.name} has no histogram`);
  return standaloneSvg(fleetChart(Plot, document, fleet));
}

/** Reads objects from the cluster with the user's kubeconfig. */
export function clusterSource(client: KubeClient): Source {
  const get = async <T>(plural: string, namespace: string, name: string): Promise<T | undefined> => {
    try {
      return await client.get<T>(resourcePath({ group: API_GROUP, version: API_VERSION, plural, namespace, name }));
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  };
  return {
    traceJob: (ns, name) => get<TraceJobLike>(PLURAL, ns, name),
    traceTrigger: (ns, name) => get<TraceTriggerLike>(TRIGGER_PLURAL, ns, name),
  };
}

/** Objects from a file (`kubectl get ... -o json|yaml`, or a List of them). */
export async function fileSource(text: string): Promise<Source> {
  const parsed = parseYaml(text) as { kind?: string; items?: unknown[] } | null;
  const items = (parsed?.kind?.endsWith('List') === true ? (parsed.items ?? []) : [parsed]) as {
    kind?: string;
    metadata?: { name?: string; namespace?: string };
  }[];
  const find = (kind: string, ns: string, name: string): unknown =>
    items.find(
      (o) =>
        o.kind === kind &&
        o.metadata?.name === name &&
        (o.metadata.namespace === undefined || o.metadata.namespace === ns),
    );
  return {
    traceJob: async (ns, name) => find('TraceJob', ns, name) as TraceJobLike | undefined,
    traceTrigger: async (ns, name) => find('TraceTrigger', ns, name) as TraceTriggerLike | undefined,
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

export const plotMain: CommandMain = async (ctx) => {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...ctx.argv],
      allowPositionals: true,
      options: {
        namespace: { type: 'string', short: 'n' },
        output: { type: 'string', short: 'o' },
        format: { type: 'string' },
        map: { type: 'string' },
        run: { type: 'string' },
        heatmap: { type: 'boolean' },
        file: { type: 'string', short: 'f' },
        kubeconfig: { type: 'string' },
        width: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    ctx.stderr.write(`trace-operator plot: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values['help'] === true) {
    ctx.stdout.write(USAGE);
    return 0;
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  try {
    if (positionals.length !== 1) throw new Error('name exactly one object: tracejob/NAME or tracetrigger/NAME');
    const target = parseTarget(positionals[0] ?? '');
    const output = str('output') ?? '-';
    const format = output === '-' ? (str('format') ?? 'svg') : output.toLowerCase().endsWith('.png') ? 'png' : 'svg';
    if (format !== 'svg' && format !== 'png') throw new Error(`--format must be svg or png, got '${format}'`);
    if (output !== '-' && !/\.(svg|png)$/i.test(output))
      throw new Error(`--output '${output}' must end in .svg or .png (or be - for stdout)`);
    const widthText = str('width');
    const width = widthText === undefined ? undefined : Number(widthText);
    if (width !== undefined && (!Number.isInteger(width) || width < 200 || width > 4000))
      throw new Error(`--width must be a whole number of pixels from 200 to 4000, got '${widthText}'`);
    let source: Source;
    let namespace = str('namespace');
    let client: KubeClient | undefined;
    const file = str('file');
    if (file !== undefined) {
      source = await fileSource(file === '-' ? await readAll(process.stdin) : await readFile(file, 'utf8'));
      namespace ??= 'default';
    } else {
      const kubeconfig = str('kubeconfig') ?? ctx.env['KUBECONFIG'];
      const kc = loadKubeConfig(kubeconfig === undefined || kubeconfig === '' ? {} : { kubeconfig });
      namespace ??= kc.context?.namespace ?? 'default';
      client = new KubeClient({ kubeConfig: kc, maxRetries: 1 });
      source = clusterSource(client);
    }
    let svg: string;
    try {
      svg = await plotSvg(source, target, namespace, {
        ...(str('map') === undefined ? {} : { mapName: str('map') }),
        ...(str('run') === undefined ? {} : { run: str('run') }),
        heatmap: values['heatmap'] === true,
        ...(width === undefined ? {} : { width }),
      });
    } finally {
      client?.close();
    }
    const bytes = format === 'png' ? svgToPng(svg) : Buffer.from(svg);
    if (output === '-') ctx.stdout.write(bytes);
    else {
      await writeFile(output, bytes);
      ctx.stderr.write(`wrote ${output} (${bytes.length} bytes)\n`);
    }
    return 0;
  } catch (error) {
    ctx.stderr.write(`trace-operator plot: ${errorMessage(error)}\n`);
    return 1;
  }
};
