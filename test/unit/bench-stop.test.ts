// The stop-latency report of `npm run bench` (bench/lib/stop-bench.ts): p50,
// max and min per path, the fast path's p50 against the fallback's, and the
// traces that did not end Stopped, named.
import test from 'ava';
import { stopReport } from '../../bench/lib/stop-bench.ts';

test('stopReport gives each path p50/max/min, the ratio to the fallback p50, and names failures', (t) => {
  const report = stopReport([
    { path: 'exec', latenciesMs: [250, 230, 300], failures: [], reasons: ['StopDelivered'], load: [1.2, 1.1, 1] },
    {
      path: 'configmap',
      latenciesMs: [40_000, 60_000, 20_000],
      failures: ['stop-3: Failed Error'],
      reasons: ['StopWaitsForKubelet'],
      load: [2, 1.5, 1.25],
    },
  ]);
  const [header, , exec, configmap] = report.split('\n');
  t.regex(header ?? '', /p50 ÷ fallback p50/);
  t.regex(
    exec ?? '',
    /exec \(pods\/exec, the fast path\)\s+3\s+250ms\s+300ms\s+230ms\s+0\.01×\s+StopDelivered\s+1\.2\/1\.1\/1\s+0/,
  );
  t.regex(
    configmap ?? '',
    /40\.0s\s+1m00s\s+20\.0s\s+1\.00×\s+StopWaitsForKubelet\s+2\/1\.5\/1\.25\s+1: stop-3: Failed Error/,
  );
});
