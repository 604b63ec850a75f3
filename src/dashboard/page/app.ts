/// <reference lib="dom" />
// The dashboard page (runs in the browser, served with its types stripped).
// Views by URL hash: #/ (lists), #/tracejob/NS/NAME, #/tracetrigger/NS/NAME.
// Data comes from the server's event streams; charts are the ones
// `trace-operator plot` draws (src/plot/charts.ts), with Plot's UMD bundle.
import { fleetChart, heatmapChart, histogramChart, type PlotApi } from '../../plot/charts.ts';
import { fleetRunChart, traceJobCharts, triggerHeatmap, type TraceJobLike } from '../../plot/from-objects.ts';
import { newestFirst, type TraceTriggerLike, type TriggerRun } from '../../plot/trigger-runs.ts';
import type { MapResult } from '../../tracejob/result.ts';
import { age, badge, h, problem, table } from './dom.ts';

const Plot = (globalThis as unknown as { Plot: PlotApi }).Plot;
const token = document.querySelector('meta[name="dashboard-token"]')?.getAttribute('content') ?? '';
const main = document.getElementById('main') as HTMLElement;
const live = document.getElementById('live') as HTMLElement;

interface Meta {
  name: string;
  namespace: string;
  uid?: string;
  creationTimestamp?: string;
}
interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}
interface Summary {
  metadata: Meta;
  spec: { hostname?: string; targetPod?: { name: string }; schedule?: string; alert?: boolean; stop?: boolean };
  status: {
    phase?: string;
    node?: string;
    id?: string;
    outcome?: string;
    runCount?: number;
    lastRun?: { id: string; time: string; traceJobs: number };
    conditions?: Condition[];
  };
}
interface TraceJobObject {
  metadata: Meta;
  spec: { hostname?: string; targetPod?: { name: string }; stop?: boolean; deadline?: number; program?: string };
  status?: {
    id?: string;
    phase?: string;
    node?: string;
    startTime?: string;
    completionTime?: string;
    conditions?: Condition[];
    result?: { outcome?: string; message?: string; maps?: MapResult[] };
    output?: { configMapName: string };
  };
}
interface KubeEvent {
  metadata: Meta;
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  lastTimestamp?: string;
  eventTime?: string;
  series?: { count?: number; lastObservedTime?: string };
}
type Feed<T> = { type: 'sync'; objects: T[] } | { type: 'added' | 'modified' | 'deleted'; object: T };
interface Problem {
  what: string;
  status?: number;
  reason?: string;
  message: string;
}

let teardown: (() => void)[] = [];
function onLeave(f: () => void): void {
  teardown.push(f);
}

/** An EventSource closed when the view changes; `live` shows whether it is connected. */
function stream(url: string, handlers: Record<string, (data: unknown) => void>): EventSource {
  const es = new EventSource(url);
  for (const [event, handler] of Object.entries(handlers))
    es.addEventListener(event, (e) => handler(JSON.parse((e as MessageEvent<string>).data)));
  es.onopen = () => live.classList.add('on');
  es.onerror = () => live.classList.remove('on');
  onLeave(() => es.close());
  return es;
}

/** Keeps objects by namespace/name from a feed's sync/added/modified/deleted messages. */
function applyFeed<T extends { metadata: Meta }>(store: Map<string, T>, msg: Feed<T>): void {
  const key = (o: T): string => `${o.metadata.namespace}/${o.metadata.name}`;
  if (msg.type === 'sync') {
    store.clear();
    for (const o of msg.objects) store.set(key(o), o);
  } else if (msg.type === 'deleted') store.delete(key(msg.object));
  else store.set(key(msg.object), msg.object);
}

function chartWidth(container: HTMLElement): number {
  return Math.max(480, Math.min(1000, container.clientWidth || main.clientWidth - 34));
}

// ---------------------------------------------------------------- lists

function listView(params: URLSearchParams): void {
  const state = {
    namespace: params.get('namespace') ?? defaultNamespace,
    phase: params.get('phase') ?? '',
    node: params.get('node') ?? '',
  };
  const jobs = new Map<string, Summary>();
  const triggers = new Map<string, Summary>();
  const problems = new Map<string, Problem>();
  const nsInput = h('input', { id: 'filter-namespace', placeholder: 'all namespaces', value: state.namespace });
  const phaseSelect = h(
    'select',
    { id: 'filter-phase' },
    ...['', 'Pending', 'Running', 'Succeeded', 'Failed'].map((p) =>
      h('option', { value: p, selected: p === state.phase }, p === '' ? 'any phase' : p),
    ),
  );
  const nodeInput = h('input', { id: 'filter-node', placeholder: 'any node', value: state.node });
  const problemBox = h('div', { id: 'problems' });
  const jobsBox = h('div', { id: 'tracejobs' });
  const triggersBox = h('div', { id: 'tracetriggers' });
  main.replaceChildren(
    h('h1', {}, 'Traces'),
    h(
      'div',
      { class: 'card toolbar' },
      h('label', {}, 'Namespace', nsInput),
      h('label', {}, 'Phase', phaseSelect),
      h('label', {}, 'Node', nodeInput),
    ),
    problemBox,
    h('h2', {}, 'TraceJobs'),
    h('div', { class: 'card' }, jobsBox),
    h('h2', {}, 'TraceTriggers'),
    h('div', { class: 'card' }, triggersBox),
  );
  const render = (): void => {
    problemBox.replaceChildren(
      ...[...problems.values()].map((p) =>
        problem(
          p.what === 'tracetriggers' && p.status === 404
            ? 'TraceTriggers are not installed in this cluster'
            : p.status === undefined
              ? `Cannot reach the API server to list ${p.what}`
              : `Listing ${p.what} was refused`,
          p.message,
          p.status,
        ),
      ),
    );
    const now = Date.now();
    const rows = [...jobs.values()]
      .filter((j) => state.phase === '' || j.status.phase === state.phase)
      .filter((j) => state.node === '' || (j.status.node ?? j.spec.hostname ?? '').includes(state.node))
      .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''))
      .map((j) =>
        h(
          'tr',
          { 'data-name': j.metadata.name, 'data-namespace': j.metadata.namespace, 'data-phase': j.status.phase ?? '' },
          h('td', {}, h('a', { href: `#/tracejob/${j.metadata.namespace}/${j.metadata.name}` }, j.metadata.name)),
          h('td', {}, j.metadata.namespace),
          h('td', {}, badge(j.status.phase ?? 'New')),
          h('td', {}, j.status.node ?? j.spec.hostname ?? (j.spec.targetPod ? `pod ${j.spec.targetPod.name}` : '')),
          h('td', {}, j.status.outcome ?? ''),
          h('td', { title: j.metadata.creationTimestamp ?? '' }, age(j.metadata.creationTimestamp, now)),
        ),
      );
    jobsBox.replaceChildren(
      table(['Name', 'Namespace', 'Phase', 'Node', 'Outcome', 'Age'], rows, 'No TraceJobs match.'),
    );
    const trows = [...triggers.values()]
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
      .map((t) =>
        h(
          'tr',
          { 'data-name': t.metadata.name, 'data-namespace': t.metadata.namespace },
          h('td', {}, h('a', { href: `#/tracetrigger/${t.metadata.namespace}/${t.metadata.name}` }, t.metadata.name)),
          h('td', {}, t.metadata.namespace),
          h(
            'td',
            {},
            [t.spec.schedule === undefined ? '' : `schedule ${t.spec.schedule}`, t.spec.alert ? 'alerts' : '']
              .filter((s) => s !== '')
              .join(' · '),
          ),
          h('td', {}, String(t.status.runCount ?? 0)),
          h('td', {}, t.status.lastRun === undefined ? '' : `${age(t.status.lastRun.time, now)} ago`),
          h('td', {}, age(t.metadata.creationTimestamp, now)),
        ),
      );
    triggersBox.replaceChildren(
      table(['Name', 'Namespace', 'Fires on', 'Runs', 'Last run', 'Age'], trows, 'No TraceTriggers.'),
    );
  };
  const connect = (): void => {
    teardown.splice(0).forEach((f) => f());
    jobs.clear();
    triggers.clear();
    problems.clear();
    render();
    const q = state.namespace === '' ? '' : `?namespace=${encodeURIComponent(state.namespace)}`;
    stream(`/api/list${q}`, {
      tracejobs: (m) => {
        problems.delete('tracejobs');
        applyFeed(jobs, m as Feed<Summary>);
        render();
      },
      tracetriggers: (m) => {
        problems.delete('tracetriggers');
        applyFeed(triggers, m as Feed<Summary>);
        render();
      },
      problem: (p) => {
        const pr = p as Problem;
        problems.set(pr.what, pr);
        render();
      },
    });
    const tick = setInterval(render, 5000);
    onLeave(() => clearInterval(tick));
  };
  const remember = (): void => {
    const q = new URLSearchParams();
    if (state.namespace !== '') q.set('namespace', state.namespace);
    if (state.phase !== '') q.set('phase', state.phase);
    if (state.node !== '') q.set('node', state.node);
    history.replaceState(null, '', `#/${q.size > 0 ? `?${q}` : ''}`);
  };
  nsInput.addEventListener('change', () => {
    state.namespace = nsInput.value.trim();
    remember();
    connect();
  });
  phaseSelect.addEventListener('change', () => {
    state.phase = phaseSelect.value;
    remember();
    render();
  });
  nodeInput.addEventListener('input', () => {
    state.node = nodeInput.value.trim();
    remember();
    render();
  });
  connect();
}

// ---------------------------------------------------------------- shared pieces

function conditionsTable(conditions: Condition[] | undefined): HTMLElement {
  return table(
    ['Type', 'Status', 'Reason', 'Message', 'Since'],
    (conditions ?? []).map((c) =>
      h(
        'tr',
        { 'data-type': c.type },
        h('td', {}, c.type),
        h('td', {}, badge(c.status)),
        h('td', {}, c.reason ?? ''),
        h('td', {}, c.message ?? ''),
        h('td', { title: c.lastTransitionTime ?? '' }, age(c.lastTransitionTime)),
      ),
    ),
    'No conditions yet.',
  );
}

/** Most Events listed (the newest); a trigger that fired often has many. */
const MAX_EVENTS = 15;

/** A feed handler that keeps `events` in step with an Events watch and redraws their table in `box`. */
function followEvents(events: Map<string, KubeEvent>, box: HTMLElement): (m: unknown) => void {
  return (m) => {
    const msg = m as Feed<KubeEvent>;
    if (msg.type === 'sync') {
      events.clear();
      for (const e of msg.objects) events.set(e.metadata.name, e);
    } else if (msg.type === 'deleted') events.delete(msg.object.metadata.name);
    else events.set(msg.object.metadata.name, msg.object);
    box.replaceChildren(eventsTable(events));
  };
}

function eventsTable(events: Map<string, KubeEvent>): HTMLElement {
  const all = [...events.values()].sort((a, b) =>
    (a.lastTimestamp ?? a.eventTime ?? '').localeCompare(b.lastTimestamp ?? b.eventTime ?? ''),
  );
  const list = all.slice(-MAX_EVENTS);
  const rows = table(
    ['Type', 'Reason', 'Message', 'Count', 'Last seen'],
    list.map((e) =>
      h(
        'tr',
        {},
        h('td', {}, badge(e.type)),
        h('td', {}, e.reason ?? ''),
        h('td', {}, e.message ?? ''),
        h('td', {}, String(e.series?.count ?? e.count ?? 1)),
        h('td', {}, age(e.series?.lastObservedTime ?? e.lastTimestamp ?? e.eventTime)),
      ),
    ),
    'No Events.',
  );
  return all.length > list.length
    ? h('div', {}, rows, h('div', { class: 'muted' }, `and ${all.length - list.length} older Events`))
    : rows;
}

function mapTable(map: MapResult): HTMLElement {
  if (map.kind === 'scalar')
    return h(
      'table',
      { 'data-map': map.name },
      h('tbody', {}, h('tr', {}, h('td', {}, map.name), h('td', {}, map.value ?? ''))),
    );
  return h(
    'div',
    { 'data-map': map.name },
    table(
      ['Key', 'Value'],
      (map.entries ?? []).map((e) => h('tr', {}, h('td', {}, e.key), h('td', {}, e.value))),
      'No entries.',
    ),
    map.truncated === true ? h('div', { class: 'muted' }, 'Only the largest entries were kept.') : null,
  );
}

// ---------------------------------------------------------------- one TraceJob

function traceJobView(namespace: string, name: string): void {
  let tj: TraceJobObject | undefined;
  let logFor: string | undefined;
  let stopLog: (() => void) | undefined;
  let finalOutputLoaded = false;
  const events = new Map<string, KubeEvent>();
  const title = h('h1', {}, name);
  const phase = h('span', { id: 'phase' });
  const stopButton = h('button', { id: 'stop', class: 'danger' }, 'Stop trace');
  const stopResult = h('div', { id: 'stop-result' });
  const meta = h('div', { class: 'meta' });
  const problems = h('div', { id: 'problems' });
  const conditions = h('div', { id: 'conditions' });
  const eventsBox = h('div', { id: 'events' });
  const output = h('pre', { id: 'output', class: 'output' }, '');
  const outputNote = h('div', { class: 'muted', id: 'output-note' }, 'Waiting for the trace to start…');
  const charts = h('div', { id: 'charts' });
  const tables = h('div', { id: 'map-tables' });
  main.replaceChildren(
    h('div', { class: 'muted' }, h('a', { href: '#/' }, '← all traces'), ` · ${namespace}`),
    h('div', { class: 'headline' }, title, phase, h('div', { class: 'actions' }, stopButton)),
    meta,
    stopResult,
    problems,
    h('h2', {}, 'Results'),
    h('div', { class: 'card' }, charts, tables),
    h('h2', {}, 'Output'),
    h('div', { class: 'card' }, outputNote, output),
    h('h2', {}, 'Conditions'),
    h('div', { class: 'card' }, conditions),
    h('h2', {}, 'Events'),
    h('div', { class: 'card' }, eventsBox),
  );
  stopButton.addEventListener('click', async () => {
    stopButton.disabled = true;
    stopResult.replaceChildren(h('div', { class: 'muted' }, 'Asking the API server to stop the trace…'));
    const res = await fetch(`/api/tracejobs/${namespace}/${name}/stop`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-dashboard-token': token },
      body: '{}',
    });
    const body = (await res.json()) as { message?: string };
    if (res.ok)
      stopResult.replaceChildren(
        h('div', { class: 'muted', id: 'stop-ok' }, 'Stop requested: bpftrace gets SIGINT and prints its maps.'),
      );
    else {
      stopResult.replaceChildren(problem('Stop was refused', body.message ?? res.statusText, res.status));
      stopButton.disabled = false;
    }
  });
  const render = (): void => {
    if (tj === undefined) return;
    const s = tj.status ?? {};
    phase.replaceChildren(badge(s.phase ?? 'New'));
    phase.setAttribute('data-phase', s.phase ?? '');
    const finished = s.phase === 'Succeeded' || s.phase === 'Failed';
    stopButton.disabled = finished || tj.spec.stop === true;
    stopButton.textContent = tj.spec.stop === true && !finished ? 'Stopping…' : 'Stop trace';
    meta.replaceChildren(
      ...[
        ['node', s.node ?? tj.spec.hostname ?? tj.spec.targetPod?.name],
        ['outcome', s.result?.outcome],
        ['id', s.id],
        ['started', s.startTime === undefined ? undefined : `${age(s.startTime)} ago`],
        ['deadline', tj.spec.deadline === undefined ? undefined : `${tj.spec.deadline}s`],
      ]
        .filter((x): x is [string, string] => x[1] !== undefined)
        .map(([k, v]) => h('span', {}, `${k} `, h('b', {}, v))),
    );
    conditions.replaceChildren(conditionsTable(s.conditions));
    const width = chartWidth(charts);
    const inputs = traceJobCharts(tj as TraceJobLike, width);
    charts.replaceChildren(
      ...(inputs.length === 0
        ? [
            h(
              'div',
              { class: 'empty' },
              finished ? 'This trace has no histogram maps.' : 'Maps appear here when the trace ends.',
            ),
          ]
        : inputs.map((c) =>
            h(
              'div',
              { class: 'chart', 'data-map': c.mapName },
              ...histogramChart(Plot, document, { ...c, interactive: true }),
            ),
          )),
    );
    tables.replaceChildren(
      ...(s.result?.maps ?? [])
        .filter((m) => m.kind !== 'histogram')
        .map((m) => h('div', {}, h('h2', {}, m.name), mapTable(m))),
    );
    if (s.result?.message !== undefined) problems.replaceChildren(problem('bpftrace', s.result.message));
    if (s.id !== undefined && logFor === undefined && !finished) {
      logFor = s.id;
      outputNote.textContent = 'Live output of the trace pod (followed):';
      const es = stream(`/api/tracejobs/${namespace}/${name}/log?traceId=${s.id}`, {
        log: (m) => {
          const { text, reset } = m as { text: string; reset: boolean };
          if (reset) output.textContent = '';
          output.textContent += text;
          output.scrollTop = output.scrollHeight;
        },
        'log-end': () => {
          outputNote.textContent = 'The trace pod has ended; its output:';
        },
        problem: (p) => {
          const pr = p as Problem;
          outputNote.replaceChildren(problem('Reading the trace output was refused', pr.message, pr.status));
        },
      });
      stopLog = () => es.close();
    }
    if (finished && s.output !== undefined && !finalOutputLoaded) {
      finalOutputLoaded = true;
      stopLog?.();
      void fetch(`/api/tracejobs/${namespace}/${name}/output`).then(async (res) => {
        const body = (await res.json()) as { text?: string; message?: string };
        if (res.ok) {
          output.textContent = body.text ?? '';
          outputNote.textContent = 'Kept output of the finished trace:';
        } else if (logFor === undefined)
          outputNote.replaceChildren(problem('Reading the kept output was refused', body.message ?? '', res.status));
      });
    } else if (finished && logFor === undefined && s.output === undefined)
      outputNote.textContent = 'This trace kept no output.';
  };
  stream(`/api/tracejobs/${namespace}/${name}/stream`, {
    object: (m) => {
      const msg = m as Feed<TraceJobObject>;
      if (msg.type === 'sync') tj = msg.objects[0];
      else if (msg.type === 'deleted') tj = undefined;
      else tj = msg.object;
      if (tj === undefined) {
        phase.replaceChildren(badge(msg.type === 'deleted' ? 'Deleted' : 'NotFound'));
        problems.replaceChildren(problem('Not found', `TraceJob ${namespace}/${name} does not exist (or was deleted)`));
      } else problems.replaceChildren();
      render();
    },
    events: followEvents(events, eventsBox),
    problem: (p) => {
      const pr = p as Problem;
      const box = pr.what === 'events' ? eventsBox : problems;
      box.replaceChildren(
        problem(
          pr.what === 'events' ? 'Reading Events was refused' : 'Reading the TraceJob was refused',
          pr.message,
          pr.status,
        ),
      );
    },
  });
}

// ---------------------------------------------------------------- one TraceTrigger

function traceTriggerView(namespace: string, name: string, params: URLSearchParams): void {
  let trigger: (TraceTriggerLike & { metadata: Meta }) | undefined;
  let selected = params.get('run') ?? undefined;
  const traceJobs = new Map<string, TraceJobLike>();
  const events = new Map<string, KubeEvent>();
  const meta = h('div', { class: 'meta' });
  const problems = h('div', { id: 'problems' });
  const heatmap = h('div', { id: 'heatmap', class: 'chart' });
  const runsBox = h('div', { id: 'runs' });
  const fleet = h('div', { id: 'fleet', class: 'chart' });
  const conditions = h('div', { id: 'conditions' });
  const eventsBox = h('div', { id: 'events' });
  main.replaceChildren(
    h('div', { class: 'muted' }, h('a', { href: '#/' }, '← all traces'), ` · ${namespace}`),
    h(
      'div',
      { id: 'trigger-overview' },
      h('div', { class: 'headline' }, h('h1', {}, name), h('span', { class: 'badge' }, 'TraceTrigger')),
      meta,
      problems,
      h('h2', {}, 'Runs over time'),
      h('div', { class: 'card' }, heatmap),
    ),
    h('h2', {}, 'Selected run'),
    h('div', { class: 'card' }, fleet),
    h('h2', {}, 'Runs'),
    h('div', { class: 'card' }, runsBox),
    h(
      'div',
      { class: 'grid2' },
      h('div', {}, h('h2', {}, 'Conditions'), h('div', { class: 'card' }, conditions)),
      h('div', {}, h('h2', {}, 'Events'), h('div', { class: 'card' }, eventsBox)),
    ),
  );
  const runs = (): TriggerRun[] => newestFirst(trigger?.status?.runs ?? []);
  const drawFleet = async (): Promise<void> => {
    const run = runs().find((r) => r.id === selected) ?? runs()[0];
    if (trigger === undefined || run === undefined) {
      fleet.replaceChildren(h('div', { class: 'empty' }, 'No runs yet.'));
      return;
    }
    await Promise.all(
      (run.traceJobs ?? [])
        .filter((ref) => !traceJobs.has(ref.name) || ref.phase === 'Running' || ref.phase === 'Pending')
        .map(async (ref) => {
          const res = await fetch(`/api/tracejobs/${namespace}/${ref.name}`);
          if (res.ok) traceJobs.set(ref.name, (await res.json()) as TraceJobLike);
        }),
    );
    const input = fleetRunChart(trigger, run, traceJobs, { width: chartWidth(fleet) });
    fleet.setAttribute('data-run', run.id);
    fleet.replaceChildren(
      ...(input === undefined
        ? [h('div', { class: 'empty' }, `Run ${run.id} has no histogram.`)]
        : fleetChart(Plot, document, { ...input, interactive: true })),
    );
  };
  const render = (): void => {
    if (trigger === undefined) return;
    const spec = trigger.spec ?? {};
    meta.replaceChildren(
      ...[
        ['schedule', spec.schedule],
        ['alerts', spec.alert === undefined ? undefined : 'yes'],
        ['runs', String(runs().length)],
      ]
        .filter((x): x is [string, string] => x[1] !== undefined)
        .map(([k, v]) => h('span', {}, `${k} `, h('b', {}, v))),
    );
    conditions.replaceChildren(conditionsTable(trigger.status?.conditions as Condition[] | undefined));
    const hm = triggerHeatmap(trigger, { width: chartWidth(heatmap) });
    heatmap.replaceChildren(
      ...(hm === undefined
        ? [h('div', { class: 'empty' }, 'No run has a histogram yet.')]
        : heatmapChart(Plot, document, { ...hm, interactive: true })),
    );
    const current = selected ?? runs()[0]?.id;
    runsBox.replaceChildren(
      table(
        ['Run', 'Time', 'By', 'Nodes', 'Failed'],
        runs().map((r) => {
          const row = h(
            'tr',
            { class: `clickable${r.id === current ? ' selected' : ''}`, 'data-run': r.id },
            h('td', {}, r.id),
            h('td', {}, `${r.time} (${age(r.time)} ago)`),
            h('td', {}, r.by ?? ''),
            h('td', {}, String(r.traceJobs?.length ?? 0)),
            h('td', {}, String((r.traceJobs ?? []).filter((j) => j.phase === 'Failed').length)),
          );
          row.addEventListener('click', () => {
            selected = r.id;
            history.replaceState(null, '', `#/tracetrigger/${namespace}/${name}?run=${encodeURIComponent(r.id)}`);
            render();
          });
          return row;
        }),
        'No runs yet.',
      ),
    );
    void drawFleet();
  };
  stream(`/api/tracetriggers/${namespace}/${name}/stream`, {
    object: (m) => {
      const msg = m as Feed<TraceTriggerLike & { metadata: Meta }>;
      trigger = msg.type === 'sync' ? msg.objects[0] : msg.type === 'deleted' ? undefined : msg.object;
      if (trigger === undefined)
        problems.replaceChildren(problem('Not found', `TraceTrigger ${namespace}/${name} does not exist`));
      else problems.replaceChildren();
      render();
    },
    events: followEvents(events, eventsBox),
    problem: (p) => {
      const pr = p as Problem;
      problems.replaceChildren(problem(`Reading ${pr.what} was refused`, pr.message, pr.status));
    },
  });
}

// ---------------------------------------------------------------- routing

let defaultNamespace = '';

function route(): void {
  teardown.splice(0).forEach((f) => f());
  live.classList.remove('on');
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path = '/', query = ''] = hash.split('?');
  const params = new URLSearchParams(query);
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  const [kind, ns, name] = parts;
  if (kind === 'tracejob' && ns !== undefined && name !== undefined) traceJobView(ns, name);
  else if (kind === 'tracetrigger' && ns !== undefined && name !== undefined) traceTriggerView(ns, name, params);
  else listView(params);
}

window.addEventListener('hashchange', route);
void fetch('/api/config')
  .then(async (res) => (await res.json()) as { namespace: string | null; server: string; user: string | null })
  .then((config) => {
    defaultNamespace = config.namespace ?? '';
    const cluster = document.getElementById('cluster');
    if (cluster !== null) cluster.textContent = `${config.user ?? 'you'} @ ${config.server}`;
  })
  .finally(route);
