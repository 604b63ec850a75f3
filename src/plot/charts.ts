/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The charts of trace results, as Observable Plot specifications: one
// definition used by the dashboard page (in the browser, Plot from its UMD
// bundle) and by `trace-operator plot` (in Node, Plot with a linkedom
// document), so both draw the same picture. Each function takes the Plot
// module and a document and returns the chart's SVG elements, top to bottom.
//
// Every drawn bar or cell carries its count in an aria-label ("[256, 512) µs:
// 3") and a <title>, so tests and screen readers read the numbers from the
// DOM, and hovering shows them.
import type * as PlotModule from '@observablehq/plot';
import type { Histogram } from '../tracejob/result.ts';
import { formatBound, formatSlot, slotAxis, unitOf, type Slot, type SlotAxis } from './buckets.ts';

export type PlotApi = typeof PlotModule;
/** What the charts need of a DOM document (the browser's, or linkedom's in Node). */
export type ChartDocument = Document;

export const THEME = {
  font: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', 'DejaVu Sans', sans-serif",
  bar: '#4269d0',
  failed: '#d62728',
  percentiles: { p50: '#1b9e77', p90: '#e6a100', p99: '#d62728' } as Record<string, string>,
  heatmapScheme: 'YlOrRd' as const,
  width: 760,
};

/** In the browser the page sets interactive: hovering shows Plot's tip; in a file each bar has a <title>. */
function hover(interactive: boolean | undefined): { tip?: PlotModule.TipOptions } {
  return interactive === true ? { tip: { fontSize: 12 } } : {};
}

export interface HistogramChartInput {
  interactive?: boolean;
  title: string;
  subtitle?: string;
  mapName: string;
  histogram: Histogram;
  width?: number;
}

export interface FleetNode {
  node: string;
  traceJob: string;
  phase?: string;
  /** Absent for a node whose trace failed or whose result is gone. */
  histogram?: Histogram;
}

export interface FleetChartInput {
  interactive?: boolean;
  title: string;
  subtitle?: string;
  mapName: string;
  merged: Histogram | undefined;
  nodes: FleetNode[];
  width?: number;
}

export interface HeatmapRun {
  id: string;
  time: Date;
  histogram: Histogram;
}

export interface HeatmapChartInput {
  interactive?: boolean;
  title: string;
  subtitle?: string;
  mapName: string;
  runs: HeatmapRun[];
  width?: number;
}

interface Bar extends Slot {
  x1: number;
  x2: number;
  count: number;
  label: string;
}

function axisLabel(mapName: string): string {
  const unit = unitOf(mapName);
  return unit === undefined ? mapName : `${mapName} (${unit})`;
}

function bucketLabel(s: Slot, count: number, mapName: string): string {
  const unit = unitOf(mapName);
  return `${formatSlot(s)}${unit === undefined ? '' : ` ${unit}`}: ${count}`;
}

function bars(axis: SlotAxis, h: Histogram, mapName: string): Bar[] {
  return h.buckets
    .filter((b) => b.count > 0)
    .map((b) => {
      const i = axis.indexOf(b);
      return { ...b, x1: i, x2: i + 1, count: b.count, label: bucketLabel(b, b.count, mapName) };
    });
}

function xScale(axis: SlotAxis, mapName: string, width: number): PlotModule.ScaleOptions {
  const ticks = axis.ticks(Math.max(4, Math.floor(width / 60)));
  const labels = new Map(ticks.map((t) => [t.position, t.label]));
  return {
    domain: [0, Math.max(1, axis.slots.length)],
    ticks: ticks.map((t) => t.position),
    tickFormat: (p: number) => labels.get(p) ?? '',
    label: axisLabel(mapName),
    labelAnchor: 'right',
    labelArrow: 'right',
  };
}

function style(): PlotModule.PlotOptions['style'] {
  return { fontFamily: THEME.font, fontSize: '12px', background: 'white', color: '#1f2328', overflow: 'visible' };
}

/** Title and subtitle, drawn in the top margin. */
function heading(
  Plot: PlotApi,
  title: string,
  subtitle: string | undefined,
  marginTop: number,
  marginLeft: number,
): PlotModule.Markish[] {
  return [
    Plot.text([title], {
      text: (d: string) => d,
      frameAnchor: 'top-left',
      dy: -marginTop + 6,
      dx: -marginLeft + 8,
      fontSize: 15,
      fontWeight: 600,
      lineAnchor: 'top',
      className: 'chart-title',
      facet: 'super',
    }),
    ...(subtitle === undefined
      ? []
      : [
          Plot.text([subtitle], {
            text: (d: string) => d,
            frameAnchor: 'top-left',
            dy: -marginTop + 26,
            dx: -marginLeft + 8,
            fontSize: 12,
            fill: '#59636e',
            lineAnchor: 'top',
            className: 'chart-subtitle',
            facet: 'super',
          }),
        ]),
  ];
}

/** The y axis label ("↑ count") just above the frame's top-left corner, clear of the title. */
function yLabel(Plot: PlotApi, text: string, marginLeft: number): PlotModule.Markish {
  return Plot.text([`↑ ${text}`], {
    text: (d: string) => d,
    frameAnchor: 'top-left',
    dx: -marginLeft + 8,
    dy: -8,
    lineAnchor: 'bottom',
    fill: '#59636e',
    className: 'y-label',
    facet: 'super',
  });
}

interface Marker {
  position: number;
  names: string[];
  value: number;
}

/** p50/p90/p99 at their positions; equal positions share one marker ("p90 p99"). */
function markers(axis: SlotAxis, h: Histogram): Marker[] {
  const out: Marker[] = [];
  for (const name of ['p50', 'p90', 'p99'] as const) {
    const value = h[name];
    if (value === undefined) continue;
    const position = axis.position(value);
    if (position === undefined) continue;
    const same = out.find((m) => m.position === position);
    if (same !== undefined) same.names.push(name);
    else out.push({ position, names: [name], value });
  }
  return out;
}

function markerColor(m: Marker): string {
  return THEME.percentiles[m.names[m.names.length - 1] ?? 'p50'] ?? '#444';
}

function percentileMarks(Plot: PlotApi, list: Marker[], mapName: string): PlotModule.Markish[] {
  const unit = unitOf(mapName);
  const text = (m: Marker): string =>
    `${m.names.join(' ')} ${formatBound(m.value)}${unit === undefined ? '' : ` ${unit}`}`;
  return [
    Plot.ruleX(list, {
      x: 'position',
      stroke: markerColor,
      strokeWidth: 1.5,
      strokeDasharray: '4,3',
      className: 'percentile',
      ariaLabel: text,
    }),
    Plot.text(list, {
      x: 'position',
      frameAnchor: 'top',
      dy: -6,
      lineAnchor: 'bottom',
      text,
      fill: markerColor,
      fontWeight: 600,
      fontSize: 11,
      className: 'percentile-label',
    }),
  ];
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function svgOf(element: Element): Element {
  return element.tagName.toLowerCase() === 'svg' ? element : (element.querySelector('svg') ?? element);
}

/** One histogram map as a bar chart with p50/p90/p99 marked. */
export function histogramChart(Plot: PlotApi, document: ChartDocument, input: HistogramChartInput): Element[] {
  const width = input.width ?? THEME.width;
  const axis = slotAxis([input.histogram]);
  const marginTop = input.subtitle === undefined ? 58 : 76;
  const chart = Plot.plot({
    document,
    width,
    height: 300,
    marginTop,
    marginLeft: 56,
    marginRight: 52,
    marginBottom: 44,
    style: style(),
    x: xScale(axis, input.mapName, width),
    y: { label: null, grid: true, nice: true },
    marks: [
      ...heading(Plot, input.title, input.subtitle, marginTop, 56),
      yLabel(Plot, 'count', 56),
      Plot.rectY(bars(axis, input.histogram, input.mapName), {
        x1: 'x1',
        x2: 'x2',
        y: 'count',
        fill: THEME.bar,
        insetLeft: 1,
        insetRight: 1,
        className: 'bucket',
        ariaLabel: 'label',
        title: 'label',
        ...hover(input.interactive),
      }),
      Plot.ruleY([0]),
      ...percentileMarks(Plot, markers(axis, input.histogram), input.mapName),
    ],
  });
  return [svgOf(chart as unknown as Element)];
}

/**
 * A fleet run: the merged histogram, then one small chart per node, all
 * nodes on one x and one y scale; a node without a result is marked failed.
 */
export function fleetChart(Plot: PlotApi, document: ChartDocument, input: FleetChartInput): Element[] {
  const width = input.width ?? THEME.width;
  const all = [...(input.merged === undefined ? [] : [input.merged]), ...input.nodes.flatMap((n) => n.histogram ?? [])];
  const axis = slotAxis(all);
  const out: Element[] = [];
  if (input.merged !== undefined)
    out.push(
      ...histogramChart(Plot, document, {
        title: input.title,
        mapName: input.mapName,
        histogram: input.merged,
        width,
        ...(input.interactive === undefined ? {} : { interactive: input.interactive }),
        ...(input.subtitle === undefined ? {} : { subtitle: input.subtitle }),
      }),
    );
  const nodes = input.nodes.map((n) => n.node);
  const nodeBars = input.nodes.flatMap((n) =>
    n.histogram === undefined ? [] : bars(axis, n.histogram, input.mapName).map((b) => ({ ...b, node: n.node })),
  );
  const failed = input.nodes.filter((n) => n.histogram === undefined);
  const labels = input.nodes.map((n) => ({
    node: n.node,
    text:
      n.histogram === undefined
        ? `${n.node}  ✗ ${clip(n.phase ?? 'no result', 90)}`
        : `${n.node}  (${n.histogram.total} samples)`,
    failed: n.histogram === undefined,
  }));
  const facetHeight = 92;
  const multiples = Plot.plot({
    document,
    width,
    height: 40 + 36 + facetHeight * Math.max(1, nodes.length),
    marginTop: 40,
    marginLeft: 56,
    marginRight: 52,
    marginBottom: 36,
    style: style(),
    x: xScale(axis, input.mapName, width),
    y: { label: null, grid: true, nice: true, ticks: 3 },
    fy: { domain: nodes, axis: null, padding: 0.28 },
    marks: [
      Plot.text(['per node, one scale'], {
        text: (d: string) => d,
        frameAnchor: 'top-left',
        dy: -34,
        dx: -56 + 8,
        fontSize: 13,
        fontWeight: 600,
        lineAnchor: 'top',
        facet: 'super',
      }),
      yLabel(Plot, 'count', 56),
      Plot.frame({ stroke: '#d0d7de' }),
      Plot.rectY(nodeBars, {
        x1: 'x1',
        x2: 'x2',
        y: 'count',
        fy: 'node',
        fill: THEME.bar,
        insetLeft: 1,
        insetRight: 1,
        className: 'node-bucket',
        ariaLabel: (d: Bar & { node: string }) => `${d.node} ${d.label}`,
        title: 'label',
      }),
      Plot.text(labels, {
        fy: 'node',
        frameAnchor: 'top-left',
        dx: 6,
        dy: 5,
        lineAnchor: 'top',
        text: 'text',
        fontWeight: 600,
        fill: (d: { failed: boolean }) => (d.failed ? THEME.failed : '#1f2328'),
        className: 'node-label',
      }),
      Plot.text(failed, {
        fy: 'node',
        frameAnchor: 'middle',
        text: (n: FleetNode) => `trace failed on ${n.node}: no result`,
        fill: THEME.failed,
        fontSize: 12,
        className: 'node-failed',
        ariaLabel: (n: FleetNode) => `failed ${n.node}`,
      }),
    ],
  });
  out.push(svgOf(multiples as unknown as Element));
  return out;
}

interface Cell {
  x1: Date;
  x2: Date;
  y1: number;
  y2: number;
  count: number;
  run: string;
  label: string;
}

function utcTicks(times: Date[]): (d: Date) => string {
  const ms = times.map((t) => t.getTime());
  const span = Math.max(...ms) - Math.min(...ms);
  return (d: Date) => {
    const iso = d.toISOString();
    if (span > 86_400_000) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
    return span < 600_000 ? iso.slice(11, 19) : iso.slice(11, 16);
  };
}

/** A series of runs as a latency heatmap: time across, buckets up, colour = count. */
export function heatmapChart(Plot: PlotApi, document: ChartDocument, input: HeatmapChartInput): Element[] {
  const width = input.width ?? THEME.width;
  const runs = [...input.runs].sort((a, b) => a.time.getTime() - b.time.getTime());
  const axis = slotAxis(runs.map((r) => r.histogram));
  const gaps = runs.slice(1).map((r, i) => r.time.getTime() - (runs[i]?.time.getTime() ?? 0));
  const sortedGaps = [...gaps].sort((a, b) => a - b);
  const step = sortedGaps[Math.floor(sortedGaps.length / 2)] ?? 60_000;
  const cells: Cell[] = runs.flatMap((r, i) => {
    const next = runs[i + 1]?.time.getTime();
    const end = next !== undefined && next - r.time.getTime() <= step * 1.5 ? next : r.time.getTime() + step;
    return r.histogram.buckets
      .filter((b) => b.count > 0)
      .map((b) => {
        const slot = axis.indexOf(b);
        return {
          x1: r.time,
          x2: new Date(end),
          y1: slot,
          y2: slot + 1,
          count: b.count,
          run: r.id,
          label: `${r.time.toISOString().replace('T', ' ').slice(0, 19)}Z  ${bucketLabel(b, b.count, input.mapName)}`,
        };
      });
  });
  const ticks = axis.ticks(10);
  const labels = new Map(ticks.map((t) => [t.position, t.label]));
  const marginTop = input.subtitle === undefined ? 58 : 76;
  const chart = Plot.plot({
    document,
    width,
    height: Math.max(300, 120 + axis.slots.length * 14),
    marginTop,
    marginLeft: 64,
    marginRight: 52,
    marginBottom: 44,
    style: style(),
    x: {
      type: 'utc',
      label: 'run time (UTC)',
      labelAnchor: 'right',
      labelArrow: 'right',
      // 24-hour UTC clock times; seconds when the runs span under ten minutes, the date when over a day.
      tickFormat: utcTicks(runs.map((r) => r.time)),
    },
    y: {
      domain: [0, Math.max(1, axis.slots.length)],
      ticks: ticks.map((t) => t.position),
      tickFormat: (p: number) => labels.get(p) ?? '',
      label: null,
    },
    color: { type: 'quantize', n: 7, scheme: THEME.heatmapScheme, label: 'samples per bucket', zero: true },
    marks: [
      ...heading(Plot, input.title, input.subtitle, marginTop, 64),
      yLabel(Plot, axisLabel(input.mapName), 64),
      Plot.frame({ stroke: '#d0d7de' }),
      Plot.rect(cells, {
        x1: 'x1',
        x2: 'x2',
        y1: 'y1',
        y2: 'y2',
        fill: 'count',
        inset: 0.5,
        className: 'cell',
        ariaLabel: 'label',
        title: 'label',
        ...hover(input.interactive),
      }),
    ],
  });
  const svg = svgOf(chart as unknown as Element);
  const legend = (chart as unknown as { legend(name: 'color', o?: object): Element | undefined }).legend('color', {
    label: 'samples per bucket',
    width: 320,
    marginLeft: 16,
    style: style(),
  });
  return legend === undefined ? [svg] : [svg, svgOf(legend)];
}
