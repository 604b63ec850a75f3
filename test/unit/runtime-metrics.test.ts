// Metric names and labels match controller-runtime / client-go, zero-filled.
import test from 'ava';
import { FakeClock } from '../support/fake-clock.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { WorkQueue } from '../../src/runtime/queue.ts';

function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

test("a controller's series exist with zeros before anything happens", async (t) => {
  const metrics = new RuntimeMetrics();
  metrics.controller('tracejob', { maxConcurrentReconciles: 4 });
  const text = await metrics.render();
  for (const result of ['success', 'error', 'requeue', 'requeue_after']) {
    t.is(sample(text, `controller_runtime_reconcile_total{controller="tracejob",result="${result}"}`), 0, result);
  }
  t.is(sample(text, 'controller_runtime_reconcile_errors_total{controller="tracejob"}'), 0);
  t.is(sample(text, 'controller_runtime_terminal_reconcile_errors_total{controller="tracejob"}'), 0);
  t.is(sample(text, 'controller_runtime_reconcile_panics_total{controller="tracejob"}'), 0);
  t.is(sample(text, 'controller_runtime_reconcile_time_seconds_count{controller="tracejob"}'), 0);
  t.is(sample(text, 'controller_runtime_max_concurrent_reconciles{controller="tracejob"}'), 4);
  t.is(sample(text, 'controller_runtime_active_workers{controller="tracejob"}'), 0);
});

test('controller hooks count results, errors and reconcile time', async (t) => {
  const metrics = new RuntimeMetrics();
  const c = metrics.controller('c', { maxConcurrentReconciles: 2 });
  c.activeWorkers(1);
  c.reconciled('success', 0.02);
  c.reconciled('error', 0.5);
  c.error();
  c.terminalError();
  c.panic();
  const text = await metrics.render();
  t.is(sample(text, 'controller_runtime_reconcile_total{controller="c",result="success"}'), 1);
  t.is(sample(text, 'controller_runtime_reconcile_total{controller="c",result="error"}'), 1);
  t.is(sample(text, 'controller_runtime_reconcile_errors_total{controller="c"}'), 1);
  t.is(sample(text, 'controller_runtime_terminal_reconcile_errors_total{controller="c"}'), 1);
  t.is(sample(text, 'controller_runtime_reconcile_panics_total{controller="c"}'), 1);
  t.is(sample(text, 'controller_runtime_reconcile_time_seconds_count{controller="c"}'), 2);
  t.is(sample(text, 'controller_runtime_reconcile_time_seconds_bucket{le="0.025",controller="c"}'), 1);
  t.is(sample(text, 'controller_runtime_active_workers{controller="c"}'), 1);
});

test('workqueue series carry name and controller labels and read in-progress work at scrape time', async (t) => {
  const clock = new FakeClock();
  const metrics = new RuntimeMetrics();
  const queue = new WorkQueue({ clock, metrics: metrics.queue('tracejob') });
  metrics.observeQueue('tracejob', queue);
  let text = await metrics.render();
  t.is(sample(text, 'workqueue_depth{name="tracejob",controller="tracejob"}'), 0);
  t.is(sample(text, 'workqueue_adds_total{name="tracejob",controller="tracejob"}'), 0);
  t.is(sample(text, 'workqueue_retries_total{name="tracejob",controller="tracejob"}'), 0);
  t.is(sample(text, 'workqueue_queue_duration_seconds_count{name="tracejob",controller="tracejob"}'), 0);
  t.is(sample(text, 'workqueue_work_duration_seconds_count{name="tracejob",controller="tracejob"}'), 0);
  queue.add('a');
  queue.add('b');
  queue.addRateLimited('c');
  t.is(await queue.get(), 'a');
  await clock.advance(3000);
  text = await metrics.render();
  t.is(
    sample(text, 'workqueue_depth{name="tracejob",controller="tracejob"}'),
    2,
    'b, and c once its 5 ms backoff passed',
  );
  t.is(sample(text, 'workqueue_adds_total{name="tracejob",controller="tracejob"}'), 3);
  t.is(sample(text, 'workqueue_retries_total{name="tracejob",controller="tracejob"}'), 1);
  t.is(sample(text, 'workqueue_unfinished_work_seconds{name="tracejob",controller="tracejob"}'), 3);
  t.is(sample(text, 'workqueue_longest_running_processor_seconds{name="tracejob",controller="tracejob"}'), 3);
});

test('leader status and REST client requests', async (t) => {
  const metrics = new RuntimeMetrics();
  metrics.leader('trace-operator', true);
  metrics.restRequest({ method: 'post', code: 201, host: '127.0.0.1:6443', seconds: 0.01 });
  metrics.restRequest({ method: 'POST', code: 201, host: '127.0.0.1:6443' });
  metrics.restRequest({ method: 'GET', code: '<error>', host: '127.0.0.1:6443' });
  const text = await metrics.render();
  t.is(sample(text, 'leader_election_master_status{name="trace-operator"}'), 1);
  t.is(sample(text, 'rest_client_requests_total{code="201",method="POST",host="127.0.0.1:6443"}'), 2);
  t.is(sample(text, 'rest_client_requests_total{code="<error>",method="GET",host="127.0.0.1:6443"}'), 1);
  t.is(sample(text, 'rest_client_request_duration_seconds_count{verb="POST",host="127.0.0.1:6443"}'), 1);
  metrics.leader('trace-operator', false);
  t.is(sample(await metrics.render(), 'leader_election_master_status{name="trace-operator"}'), 0);
});

test('each instance has its own registry, so two never collide; process metrics are opt-in', async (t) => {
  const a = new RuntimeMetrics();
  const b = new RuntimeMetrics({ processMetrics: true });
  a.controller('x', { maxConcurrentReconciles: 1 });
  b.controller('x', { maxConcurrentReconciles: 1 });
  t.false((await a.render()).includes('process_cpu_user_seconds_total'));
  t.true((await b.render()).includes('process_cpu_user_seconds_total'));
  t.regex(a.contentType, /text\/plain/);
});
