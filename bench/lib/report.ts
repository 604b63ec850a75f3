// Turns the results into the tables `npm run bench` prints.
import type { StartTimings, StartupResult, ThroughputPoint } from './runner-bench.ts';
import type { BurstResult, CeilingResult, OperatorResult, RestartResult } from './scenario.ts';
import type { CpuSplit } from './procfs.ts';
import type { Summary } from './stats.ts';
import {
  DISTURBED_OTHER_CORES,
  fairRatio,
  formatBytes,
  formatMs,
  formatNumber,
  formatRatio,
  linearFit,
  ratio,
  renderTable,
} from './stats.ts';

export interface SizeResult {
  n: number;
  ceiling?: CeilingResult;
  /** A second ceiling run after the operator's (full runs, N ≤ 1000), so drift on the shared machine shows. */
  ceilingAfter?: CeilingResult;
  operator?: OperatorResult;
  /** More bursts at this N (--repeats), alternating: the operator's (its burst only), then the ceiling's. */
  operatorRepeats?: BurstResult[];
  ceilingRepeats?: CeilingResult[];
  seconds: number;
}

const CPU_COLUMNS: [string, string][] = [
  ['kube-apiserver', 'apiserver'],
  ['etcd', 'etcd'],
  ['kube-controller-manager', 'kcm'],
  ['kube-scheduler', 'sched'],
  ['kwok', 'kwok'],
];

function lat(s: Summary | undefined): string[] {
  if (s === undefined || s.count === 0) return ['—', '—', '—', '—'];
  return [formatMs(s.p50), formatMs(s.p90), formatMs(s.p99), formatMs(s.max)];
}

function perSecond(n: number, seconds: number): number {
  return seconds > 0 ? n / seconds : Number.NaN;
}

/** Writes per TraceJob by method, e.g. "POST 3, PUT 3". */
function methods(byMethod: Record<string, number>, per: number): string {
  const parts = ['POST', 'PUT', 'PATCH', 'DELETE']
    .filter((k) => (byMethod[k] ?? 0) !== 0)
    .map((k) => `${k} ${formatNumber((byMethod[k] ?? 0) / per, 2)}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

function cores(c: number | undefined): string {
  return c === undefined || !Number.isFinite(c) ? '—' : c.toFixed(2);
}

function cpuRow(n: number, who: string, split: CpuSplit, self: string): string[] {
  return [
    String(n),
    who,
    formatNumber(split.seconds, 1),
    ...CPU_COLUMNS.map(([k]) => cores(split.cores[k])),
    cores(split.cores[self]),
    cores(split.cores['harness']),
    cores(split.otherCores),
    cores(Math.max(0, split.machineCores - split.machineBusyCores)),
  ];
}

function isDefined<T>(value: T | undefined): value is T {
  return value !== undefined;
}

/** Every operator burst at one N: the full run first, then the repeats. */
function operatorBursts(s: SizeResult): BurstResult[] {
  return [s.operator, ...(s.operatorRepeats ?? [])].filter(isDefined);
}

function ceilingBursts(s: SizeResult): BurstResult[] {
  return [s.ceiling, s.ceilingAfter, ...(s.ceilingRepeats ?? [])].filter(isDefined);
}

/** The bursts at one N in the order they ran: ceiling, operator, ceiling, then the repeats' pairs. */
function burstsInOrder(s: SizeResult): BurstResult[] {
  const pairs = (s.operatorRepeats ?? []).flatMap((o, i) => [o, s.ceilingRepeats?.[i]]);
  return [s.ceiling, s.operator, s.ceilingAfter, ...pairs].filter(isDefined);
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, v) => a + v, 0) / values.length;
}

/** CPU ms per TraceJob of each process over a whole burst (create and drain phases). */
function cpuPerTraceJobRow(n: number, r: BurstResult): string[] {
  const whole = r.cpu.whole;
  const ms = (cores: number | undefined): string =>
    cores === undefined ? '—' : formatNumber((cores * whole.seconds * 1000) / Math.max(1, r.created), 2);
  return [
    String(n),
    r.kind,
    ...CPU_COLUMNS.map(([k]) => ms(whole.cores[k])),
    ms(whole.cores[r.kind === 'operator' ? 'manager' : 'client']),
    ms(whole.cores['harness']),
    ms(whole.machineBusyCores),
  ];
}

function restartRow(label: string, r: RestartResult): string[] {
  return [
    label,
    String(r.requests.writes - r.leaseWrites),
    String(r.traceJobUpdates),
    String(r.leaseWrites),
    String(r.requests.reads),
    formatMs(r.stopSeconds * 1000),
    formatMs(r.readySeconds * 1000),
    String(r.apiserverGcCycles),
    formatMs(r.leadingSeconds * 1000),
    formatMs(r.drainedSeconds * 1000),
    String(r.reconciles),
    formatBytes(r.rssPeakBeforeReadyBytes),
    formatBytes(r.rssPeakAfterReadyBytes),
  ];
}

export function clusterReport(sizes: readonly SizeResult[]): string {
  const out: string[] = [];
  const ops = sizes.map((s) => s.operator).filter((o): o is OperatorResult => o !== undefined);

  out.push(
    'Burst throughput (TraceJobs fully reconciled per second: Job exists and status names it; from the first create)',
  );
  const rate = (r: { reconciled: number; reconcileSeconds: number } | undefined): number =>
    r === undefined ? Number.NaN : perSecond(r.reconciled, r.reconcileSeconds);
  out.push(
    renderTable([
      [
        'N',
        'creates/s',
        'operator/s',
        'ceiling/s',
        'operator÷ceiling',
        'operator burst',
        'ceiling burst',
        'all Running',
        'other CPU op/ceil',
      ],
      ...sizes.map((s) => {
        const op = s.operator;
        const operators = operatorBursts(s);
        const ceilings = ceilingBursts(s);
        const opRates = operators.map(rate);
        const ceRates = ceilings.map(rate);
        const fair = fairRatio(
          { rate: mean(opRates), otherCores: mean(operators.map((o) => o.cpu.whole.otherCores)) },
          ceilings.map((c, i) => ({ rate: ceRates[i] ?? Number.NaN, otherCores: c.cpu.whole.otherCores })),
        );
        return [
          String(s.n),
          formatNumber(op === undefined ? Number.NaN : perSecond(op.created, op.createSeconds), 0),
          (operators.length === 0
            ? '—'
            : operators
                .map((o, i) => formatNumber(opRates[i] ?? Number.NaN, 1) + (o.timedOut ? '*' : ''))
                .join(' / ')) + (fair.operatorDisturbed ? '†' : ''),
          ceilings.length === 0
            ? '—'
            : ceilings
                .map(
                  (c, i) =>
                    formatNumber(ceRates[i] ?? Number.NaN, 1) +
                    (c.timedOut ? '*' : '') +
                    (fair.disturbed.includes(i) ? '†' : ''),
                )
                .join(' / '),
          formatRatio(fair.ratio),
          operators.length === 0 ? '—' : operators.map((o) => formatMs(o.reconcileSeconds * 1000)).join(' / '),
          ceilings.length === 0 ? '—' : ceilings.map((c) => formatMs(c.reconcileSeconds * 1000)).join(' / '),
          op === undefined ? '—' : `${op.running ?? 0}/${op.created}`,
          `${operators.map((o) => cores(o.cpu.whole.otherCores)).join(' / ') || '—'} | ${ceilings.map((c) => cores(c.cpu.whole.otherCores)).join(' / ') || '—'}`,
        ];
      }),
    ]),
  );
  if (sizes.some((s) => [...operatorBursts(s), ...ceilingBursts(s)].some((r) => r.timedOut)))
    out.push('* timed out before every TraceJob was reconciled');
  if (sizes.some((s) => s.ceilingAfter !== undefined))
    out.push(
      "several figures: the bursts in the order they ran, alternating (ceiling, operator, ceiling, operator, ceiling, ...); the ratio is the operators' mean over the ceilings' mean (of those not marked †); other CPU: operators | ceilings",
    );
  if (out.some((text) => text.includes('†')))
    out.push(
      `† disturbed: its other CPU exceeds the other side's by more than ${DISTURBED_OTHER_CORES} cores; a disturbed ceiling run is left out of the ratio (unless every one is), a disturbed operator run makes the ratio flatter the ceiling`,
    );
  out.push(
    'other CPU: cores busy with work no listed process explains (other tests on this shared machine) during each burst; a ratio is only as fair as these are equal',
  );

  out.push('', 'Latency from create (the create answered or the TraceJob first seen, whichever first) to ...');
  const latRows: string[][] = [['N', 'client', 'to', 'p50', 'p90', 'p99', 'max']];
  for (const s of sizes) {
    for (const r of [s.operator, s.ceiling, s.ceilingAfter]) {
      if (r === undefined) continue;
      latRows.push([String(s.n), r.kind, 'status.id', ...lat(r.latency.toId)]);
      latRows.push([String(s.n), r.kind, 'Job created', ...lat(r.latency.toJob)]);
      latRows.push([String(s.n), r.kind, 'reconciled', ...lat(r.latency.toReconciled)]);
      if (r.latency.toRunning !== undefined)
        latRows.push([String(s.n), r.kind, 'phase Running', ...lat(r.latency.toRunning)]);
    }
  }
  out.push(renderTable(latRows));

  if (ops.length > 0) {
    out.push(
      '',
      "Writes per TraceJob (the manager's rest_client_requests_total; Lease renewals, counted by a watch on the Lease, left out)",
    );
    out.push(
      renderTable([
        [
          'N',
          'writes/TJ',
          'by method /TJ',
          'reads/TJ',
          'reconciles/TJ',
          'seen by watches /TJ',
          'steady writes',
          'ceiling writes/TJ',
        ],
        ...ops.map((o) => {
          const w = o.createPath.watch;
          const per = Math.max(1, o.created);
          const seen = `TJ ${formatNumber(w.traceJobUpdates / per, 2)}, CM ${formatNumber(w.configMaps / per, 2)}, Job ${formatNumber(w.jobs / per, 2)}, Event ${formatNumber(w.eventsCreated / per, 2)}+${formatNumber(w.eventsUpdated / per, 2)}`;
          const steadyWrites = o.steady.requests.writes - o.steady.leaseWrites;
          const ce = sizes.find((s) => s.n === o.n)?.ceiling;
          return [
            String(o.n),
            formatNumber(o.createPath.writesPerTraceJob, 2),
            methods(
              {
                ...o.createPath.requests.byMethod,
                PUT: (o.createPath.requests.byMethod['PUT'] ?? 0) - o.createPath.leaseWrites,
              },
              per,
            ),
            formatNumber(o.createPath.readsPerTraceJob, 2),
            formatNumber(o.createPath.reconcilesPerTraceJob, 2),
            seen,
            `${steadyWrites} in ${o.steady.seconds}s (+${o.steady.leaseWrites} Lease)`,
            ce === undefined ? '—' : formatNumber(ce.report.requests.writes / Math.max(1, ce.report.processed), 2),
          ];
        }),
      ]),
    );
    out.push(
      '',
      'Writes per TraceJob by kind (from the harness watches; create path = until the status names the Job)',
    );
    const kindRows: string[][] = [
      [
        'N',
        'client',
        'create path',
        'status→named',
        'ConfigMap',
        'Job',
        'status after',
        'Event new+count',
        'in burst: status after / Event',
      ],
    ];
    for (const s of sizes) {
      for (const r of [s.operator, s.ceiling, s.ceilingAfter]) {
        if (r === undefined) continue;
        const per = Math.max(1, r.created);
        const cm = r.watch.configMaps / per;
        const job = r.watch.jobs / per;
        kindRows.push([
          String(s.n),
          r.kind,
          formatNumber(r.statusWrites.toReconciled + cm + job, 2),
          formatNumber(r.statusWrites.toReconciled, 2),
          formatNumber(cm, 2),
          formatNumber(job, 2),
          formatNumber(r.statusWrites.after, 2),
          `${formatNumber(r.watch.eventsCreated / per, 2)}+${formatNumber(r.watch.eventsUpdated / per, 2)}`,
          `${formatNumber(r.inBurst.statusWritesAfter, 2)} / ${formatNumber(r.inBurst.events, 2)}`,
        ]);
      }
    }
    out.push(renderTable(kindRows));
    const lat = (l: Record<string, { meanSeconds: number }>): string =>
      ['PUT', 'POST', 'GET']
        .filter((v) => l[v] !== undefined)
        .map((v) => `${v} ${formatMs((l[v]?.meanSeconds ?? 0) * 1000)}`)
        .join(', ');
    out.push(
      `mean API latency seen by the client: ${ops
        .map((o) => {
          const ce = sizes.find((s) => s.n === o.n)?.ceiling;
          return `N=${o.n} operator ${lat(o.createPath.latency)} (mean reconcile ${formatMs(o.createPath.meanReconcileSeconds * 1000)}), ceiling ${ce?.report.latency === undefined ? '—' : lat(ce.report.latency)}`;
        })
        .join('; ')}`,
    );
    const codes = ops
      .map(
        (o) =>
          `N=${o.n}: ${Object.entries(o.createPath.requests.writesByCode)
            .map(([c, v]) => `${c}×${v}`)
            .join(' ')}`,
      )
      .join('; ');
    out.push(`write responses by code: ${codes}`);

    out.push(
      '',
      "Every client's writes per TraceJob as the API server counted them (apiserver_request_total, first create → settled; whole cluster)",
    );
    const keys = [...new Set(ops.flatMap((o) => Object.keys(o.clusterWrites)))]
      .map((k) => ({ k, total: Math.max(...ops.map((o) => (o.clusterWrites[k] ?? 0) / Math.max(1, o.created))) }))
      .filter((e) => e.total >= 0.05)
      .sort((a, b) => b.total - a.total)
      .map((e) => e.k);
    out.push(
      renderTable([
        ['request', ...ops.map((o) => `N=${o.n}`)],
        ...keys.map((k) => [k, ...ops.map((o) => formatNumber((o.clusterWrites[k] ?? 0) / Math.max(1, o.created), 2))]),
        [
          'all writes',
          ...ops.map((o) =>
            formatNumber(Object.values(o.clusterWrites).reduce((a, b) => a + b, 0) / Math.max(1, o.created), 2),
          ),
        ],
      ]),
    );

    out.push('', 'Restart over the settled TraceJobs (a new manager process; the old one released the Lease)');
    out.push(
      renderTable([
        [
          'N',
          'writes',
          'TraceJob updates',
          'Lease writes',
          'reads',
          'stop',
          '/readyz',
          'API server GCs',
          'leading',
          'all looked at',
          'reconciles',
          'RSS peak: lists',
          'then',
        ],
        ...ops.flatMap((o) => [
          ...o.restarts.map((r, i) =>
            restartRow(
              o.restarts.length === 1 ? String(o.n) : `${o.n} #${i + 1}${r === o.restart ? ' (median)' : ''}`,
              r,
            ),
          ),
          ...(o.restartWithNodeOptions === undefined
            ? []
            : [restartRow(`${o.n} (node ${(o.restartNodeOptions ?? []).join(' ')})`, o.restartWithNodeOptions)]),
        ]),
      ]),
    );
    for (const o of ops.filter((x) => x.restarts.length > 1)) {
      out.push(
        `N=${o.n}: ${o.restarts.length} restarts one after another; memory and CPU below are the median one's; the highest peak RSS of any: ${formatBytes(Math.max(...o.restarts.map((r) => r.memory.hwmBytes)))}`,
      );
    }

    out.push(
      '',
      'Manager memory: RSS from /proc (VmHWM = peak); live heap = V8 heap after a full GC forced through the inspector',
    );
    out.push(
      renderTable([
        [
          'N',
          'idle RSS',
          'idle heap',
          'burst peak RSS',
          'settled RSS',
          'settled heap',
          'restart peak RSS',
          'restart RSS',
          'restart heap',
          'heap/TJ',
          'RSS/TJ',
        ],
        ...ops.map((o) => [
          String(o.n),
          formatBytes(o.memory.idle.rssBytes),
          formatBytes(o.memory.idle.liveHeapBytes),
          formatBytes(o.memory.settled.hwmBytes),
          formatBytes(o.memory.settled.rssAfterGcBytes),
          formatBytes(o.memory.settled.liveHeapBytes),
          formatBytes(o.restart.memory.hwmBytes),
          formatBytes(o.restart.memory.rssAfterGcBytes),
          formatBytes(o.restart.memory.liveHeapBytes),
          formatBytes((o.memory.settled.liveHeapBytes - o.memory.idle.liveHeapBytes) / Math.max(1, o.created)),
          formatBytes((o.memory.settled.rssAfterGcBytes - o.memory.idle.rssAfterGcBytes) / Math.max(1, o.created)),
        ]),
      ]),
    );
    const fit = (pick: (o: OperatorResult) => number): string => {
      const f = linearFit(ops.map((o) => ({ x: o.created, y: pick(o) })));
      return f === undefined ? '—' : `${formatBytes(f.slope)}/TraceJob (+${formatBytes(f.intercept)})`;
    };
    if (ops.length >= 2) {
      out.push(
        `fitted over the sizes: settled live heap ${fit((o) => o.memory.settled.liveHeapBytes)}, settled RSS ${fit((o) => o.memory.settled.rssAfterGcBytes)}; burst peak RSS ${fit((o) => o.memory.settled.hwmBytes)}; restart peak RSS ${fit((o) => o.restart.memory.hwmBytes)}`,
      );
    }
    out.push(
      `a settled TraceJob from the API server: ${ops.map((o) => `${formatBytes(o.traceJobBytes.total)} of JSON, ${formatBytes(o.traceJobBytes.managedFields)} of it managedFields (which the manager's cache leaves out)`)[0] ?? '—'}`,
    );

    out.push(
      '',
      'CPU during the burst, in cores (2 = both busy), first create → last reconciled; harness = this process (creates + watches)',
    );
    const cpuRows: string[][] = [
      ['N', 'run', 'secs', ...CPU_COLUMNS.map(([, h]) => h), 'ctrl', 'harness', 'other', 'idle'],
    ];
    for (const s of sizes) {
      if (s.operator !== undefined) {
        cpuRows.push(cpuRow(s.n, 'operator: creating', s.operator.cpu.create, 'manager'));
        cpuRows.push(cpuRow(s.n, 'operator: draining', s.operator.cpu.drain, 'manager'));
      }
      if (s.ceiling !== undefined) {
        cpuRows.push(cpuRow(s.n, 'ceiling: creating', s.ceiling.cpu.create, 'client'));
        cpuRows.push(cpuRow(s.n, 'ceiling: draining', s.ceiling.cpu.drain, 'client'));
      }
      if (s.operator !== undefined) cpuRows.push(cpuRow(s.n, 'operator: restart', s.operator.restart.cpu, 'manager'));
    }
    out.push(renderTable(cpuRows));
    out.push(
      'ctrl = the manager (operator) or the plain client (ceiling); other = busy CPU no listed process explains (other tests on the machine)',
      '',
      'CPU per TraceJob through the whole burst, in ms of CPU time (first create → last reconciled; the machine busy = every process, other tests included)',
    );
    const perTraceJobRows: string[][] = [
      ['N', 'run', ...CPU_COLUMNS.map(([, h]) => h), 'ctrl', 'harness', 'machine busy'],
    ];
    for (const s of sizes) {
      for (const r of burstsInOrder(s)) perTraceJobRows.push(cpuPerTraceJobRow(s.n, r));
    }
    out.push(renderTable(perTraceJobRows));
  }

  out.push(
    '',
    "Deleting the TraceJobs (one DELETE each, as many in flight as the creates, background propagation: the garbage collector removes their ConfigMaps and Jobs, then the Jobs' pods); time from the first DELETE until none is left",
  );
  const gcRows: string[][] = [
    ['N', 'run', 'DELETEs answered', 'TraceJobs', 'ConfigMaps', 'Jobs', 'Pods', 'namespaces then'],
  ];
  for (const s of sizes) {
    for (const r of [s.ceiling, s.operator, s.ceilingAfter]) {
      if (r === undefined) continue;
      const g = r.gc;
      const cell = (k: string): string =>
        Number.isFinite(g.seconds[k] ?? Number.NaN)
          ? formatMs((g.seconds[k] ?? 0) * 1000)
          : `>${g.timeoutSeconds}s (${g.left[k] ?? '?'} left)`;
      gcRows.push([
        String(s.n),
        r.kind,
        formatMs(g.deleteRequestsSeconds * 1000),
        cell('tracejobs'),
        cell('configmaps'),
        cell('jobs'),
        cell('pods'),
        Number.isFinite(g.namespacesGoneSeconds) ? formatMs(g.namespacesGoneSeconds * 1000) : 'not yet',
      ]);
    }
  }
  out.push(renderTable(gcRows));
  return out.join('\n');
}

export function runnerReport(startup: StartupResult | undefined, points: readonly ThroughputPoint[]): string {
  const out: string[] = [];
  if (startup !== undefined) {
    out.push(
      `Runner start (${startup.runs} runs each, interleaved): spawn → bpftrace attached (its BEGIN probe's CLOCK_MONOTONIC), and spawn → that probe's line on stdout`,
    );
    const row = (what: string, t: StartTimings): string[] => [
      what,
      formatMs(t.attached.medianMs),
      formatMs(t.attached.minMs),
      formatRatio(ratio(t.attached.medianMs, startup.bpftrace.attached.medianMs)),
      formatMs(t.shown.medianMs),
      formatMs(t.shown.minMs),
      formatRatio(ratio(t.shown.medianMs, startup.bpftrace.shown.medianMs)),
    ];
    const exitRow = (what: string, t: { medianMs: number; minMs: number }): string[] => [
      what,
      '',
      '',
      '',
      formatMs(t.medianMs),
      formatMs(t.minMs),
      formatRatio(ratio(t.medianMs, startup.bpftrace.shown.medianMs)),
    ];
    const rows = [
      ['', 'attached', 'min', 'vs bpftrace', 'line shown', 'min', 'vs bpftrace'],
      row('bpftrace -e (baseline)', startup.bpftrace),
      row('trace-operator runner, as a trace pod starts it (launcher, dist/*.js)', startup.launcher),
      row('  the same, Node first (node dist/cli.js runner)', startup.nodeFirst),
      row('trace-operator run-local (src/*.ts, Node first)', startup.runner),
      exitRow('node -e 0 (to its exit)', startup.node),
      exitRow('run-local --help, src (to its exit)', startup.cliLoad),
    ];
    out.push(renderTable(rows));
  }
  if (points.length > 0) {
    if (out.length > 0) out.push('');
    out.push(
      "Runner output throughput (a program printing K lines per 1 ms tick; lines/s over the captured lines' kernel timestamps; lost = events bpftrace reported lost)",
    );
    out.push(
      renderTable([
        [
          'offered lines/s',
          'bpftrace -o: lines/s',
          'lost',
          'wall',
          '-f json | cat: lines/s',
          'lost',
          'runner: lines/s',
          'lost',
          'wall',
          'runner÷bpftrace -o',
        ],
        ...points.map((p) => [
          formatNumber(p.offeredPerSecond, 0),
          formatNumber(p.direct.linesPerSecond, 0),
          String(p.direct.lost),
          formatMs(p.direct.wallSeconds * 1000),
          formatNumber(p.jsonPipe.linesPerSecond, 0),
          String(p.jsonPipe.lost),
          formatNumber(p.runner.linesPerSecond, 0),
          String(p.runner.lost),
          formatMs(p.runner.wallSeconds * 1000),
          formatRatio(ratio(p.runner.linesPerSecond, p.direct.linesPerSecond)),
        ]),
      ]),
    );
    const best = (pick: (p: ThroughputPoint) => { lost: number; linesPerSecond: number }): number =>
      Math.max(
        0,
        ...points
          .filter((p) => pick(p).lost === 0 && Number.isFinite(pick(p).linesPerSecond))
          .map((p) => pick(p).linesPerSecond),
      );
    const direct = best((p) => p.direct);
    const json = best((p) => p.jsonPipe);
    const runner = best((p) => p.runner);
    out.push(
      `highest rate captured without loss: bpftrace -o ${formatNumber(direct, 0)} lines/s; bpftrace -B line -f json | cat ${formatNumber(json, 0)} lines/s; runner ${formatNumber(runner, 0)} lines/s (${formatRatio(ratio(runner, json))} of -f json | cat, ${formatRatio(ratio(runner, direct))} of bpftrace -o)`,
    );
    out.push(
      '(only the offered rates are tried: the true limits lie between the highest lossless rate and the next one)',
    );
  }
  return out.join('\n');
}
