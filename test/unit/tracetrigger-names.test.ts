import test from 'ava';
import { alertFiringKey, labelSafe, nodeTargetKey, traceJobName } from '../../src/tracetrigger/names.ts';
import { isDnsSubdomain, isLabelValue } from '../../src/tracejob/formats.ts';

const trigger = { name: 'slow-disk', uid: '5f0c5c56-6f55-4b2a-9d7e-0b8d6a9c1e01' };

test('the same firing on the same target always has the same name', (t) => {
  const key = alertFiringKey('a1b2c3', '2026-12-01T10:00:00Z');
  const a = traceJobName(trigger, key, nodeTargetKey('kwok-node-1'));
  t.is(a, traceJobName(trigger, alertFiringKey('a1b2c3', '2026-12-01T10:00:00.000Z'), nodeTargetKey('kwok-node-1')));
  t.regex(a, /^slow-disk-[0-9a-f]{16}$/);
});

test('any difference (uid, fingerprint, startsAt, target) gives another name', (t) => {
  const base = traceJobName(trigger, alertFiringKey('f', '2026-12-01T10:00:00Z'), 'node/a');
  const names = new Set([
    base,
    traceJobName({ ...trigger, uid: 'other' }, alertFiringKey('f', '2026-12-01T10:00:00Z'), 'node/a'),
    traceJobName(trigger, alertFiringKey('g', '2026-12-01T10:00:00Z'), 'node/a'),
    traceJobName(trigger, alertFiringKey('f', '2026-12-01T10:05:00Z'), 'node/a'),
    traceJobName(trigger, alertFiringKey('f', '2026-12-01T10:00:00Z'), 'node/b'),
  ]);
  t.is(names.size, 5);
});

test('names are valid object names even for long trigger names', (t) => {
  const long = { name: `${'a'.repeat(39)}-${'b'.repeat(100)}`, uid: 'u' };
  const name = traceJobName(long, 'k', 'node/x');
  t.true(isDnsSubdomain(name));
  t.regex(name, /^a{39}-[0-9a-f]{16}$/);
});

test('label values: kept when valid, else a readable prefix and a hash', (t) => {
  t.is(labelSafe('NodeDiskLatencyHigh'), 'NodeDiskLatencyHigh');
  const odd = labelSafe('Disk latency / high!');
  t.true(isLabelValue(odd));
  t.regex(odd, /^Disk-latency-high-[0-9a-f]{10}$/);
  t.true(isLabelValue(labelSafe('x'.repeat(200))));
  t.not(labelSafe('x'.repeat(200)), labelSafe('x'.repeat(201)));
});
