import test from 'ava';
import { formatBound, formatSlot, slotAxis, unitOf } from '../../src/plot/buckets.ts';

test('bounds print as bpftrace prints them', (t) => {
  t.is(formatBound(512), '512');
  t.is(formatBound(1024), '1K');
  t.is(formatBound(3 * 1024 * 1024), '3M');
  t.is(formatBound(1000), '1000');
  t.is(formatSlot({ low: 256, high: 512 }), '[256, 512)');
  t.is(formatSlot({ high: 0 }), '(…, 0)');
  t.is(formatSlot({ low: 4096 }), '[4K, …)');
});

test('empty power-of-two buckets between kept ones get their slots back', (t) => {
  const axis = slotAxis([
    {
      buckets: [
        { low: 4, high: 8, count: 1 },
        { low: 64, high: 128, count: 2 },
      ],
    },
  ]);
  t.deepEqual(
    axis.slots.map((s) => s.low),
    [4, 8, 16, 32, 64],
  );
  t.is(axis.indexOf({ low: 64, high: 128 }), 4);
  t.is(axis.position(128), 5, 'an upper bound is the right edge of its slot');
  t.is(axis.position(6), 0.5);
  t.is(axis.position(1), undefined, 'a value outside every bucket has no position');
});

test('empty linear (lhist) buckets get their slots back, and histograms share one axis', (t) => {
  const axis = slotAxis([
    { buckets: [{ low: 0, high: 10, count: 1 }] },
    {
      buckets: [
        { low: 40, high: 50, count: 1 },
        { low: 0, high: 10, count: 3 },
      ],
    },
  ]);
  t.deepEqual(
    axis.slots.map((s) => s.low),
    [0, 10, 20, 30, 40],
  );
  t.deepEqual(
    axis.ticks().map((x) => x.label),
    ['0', '10', '20', '30', '40', '50'],
  );
});

test('open-ended buckets sit at the ends', (t) => {
  const axis = slotAxis([
    {
      buckets: [
        { low: 1, high: 2, count: 1 },
        { high: 0, count: 1 },
        { low: 8, count: 1 },
      ],
    },
  ]);
  t.deepEqual(axis.slots[0], { high: 0 });
  t.deepEqual(axis.slots[axis.slots.length - 1], { low: 8 });
});

test('the unit comes from the map name', (t) => {
  t.is(unitOf('@usecs'), 'µs');
  t.is(unitOf('@ns'), 'ns');
  t.is(unitOf('@latency_ms'), 'ms');
  t.is(unitOf('@bytes'), 'bytes');
  t.is(unitOf('@calls'), undefined);
});
