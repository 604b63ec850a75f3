import test from 'ava';
import {
  bucketEstimate,
  mergeBuckets,
  percentile,
  percentiles,
  renderHistogramText,
  toHistogramBuckets,
} from '../../src/runner/histogram.ts';
import { decodeEventLine } from '../../src/runner/bpftrace-events.ts';
import { toMapResult } from '../../src/runner/result-build.ts';

test('bpftrace buckets become non-empty buckets with exclusive upper bounds', (t) => {
  const buckets = toHistogramBuckets([
    { max: -1, count: 2 },
    { min: 0, max: 0, count: 1 },
    { min: 2, max: 3, count: 0 },
    { min: 4, max: 7, count: 5 },
    { min: 100, count: 1 },
  ]);
  t.deepEqual(buckets, [
    { high: 0, count: 2 },
    { low: 0, high: 1, count: 1 },
    { low: 4, high: 8, count: 5 },
    { low: 100, count: 1 },
  ]);
});

test('percentiles are the upper bound of the bucket holding the rank', (t) => {
  // 100 samples: 50 in [1,2), 40 in [2,4), 9 in [4,8), 1 in [8,16).
  const buckets = [
    { low: 1, high: 2, count: 50 },
    { low: 2, high: 4, count: 40 },
    { low: 4, high: 8, count: 9 },
    { low: 8, high: 16, count: 1 },
  ];
  t.is(percentile(buckets, 50), 1); // a single-value bucket stands for its value
  t.is(percentile(buckets, 51), 4);
  t.is(percentile(buckets, 90), 4);
  t.is(percentile(buckets, 91), 8);
  t.is(percentile(buckets, 99), 8);
  t.is(percentile(buckets, 100), 16);
  t.deepEqual(percentiles(buckets), { p50: 1, p90: 4, p99: 8 });
  t.deepEqual(percentiles([]), {});
});

test('open-ended buckets give the bound they have', (t) => {
  t.is(bucketEstimate({ high: 0, count: 1 }), 0);
  t.is(bucketEstimate({ low: 100, count: 1 }), 100);
  t.is(bucketEstimate({ low: 512, high: 1024, count: 1 }), 1024);
  t.is(
    percentile(
      [
        { high: 0, count: 9 },
        { low: 100, count: 1 },
      ],
      99,
    ),
    100,
  );
});

test('merging buckets keeps the total and the range', (t) => {
  const many = Array.from({ length: 100 }, (_, i) => ({ low: i * 10, high: i * 10 + 10, count: i + 1 }));
  const merged = mergeBuckets(many, 64);
  t.true(merged.length <= 64);
  t.is(
    merged.reduce((s, b) => s + b.count, 0),
    (100 * 101) / 2,
  );
  t.is(merged[0]?.low, 0);
  t.is(merged.at(-1)?.high, 1000);
});

test('a keyed hist map becomes histograms with totals and percentiles', (t) => {
  const event = decodeEventLine(
    '{"type": "hist", "data": {"@usecs": {"sda": [{"min": 64, "max": 127, "count": 3}, {"min": 128, "max": 255, "count": 0}, {"min": 256, "max": 511, "count": 1}], "sdb": [{"min": 1, "max": 1, "count": 7}]}}}',
  );
  if (event.type !== 'map') return t.fail('not a map');
  const result = toMapResult(event.map);
  t.deepEqual(result, {
    name: '@usecs',
    kind: 'histogram',
    histograms: [
      { key: 'sdb', buckets: [{ low: 1, high: 2, count: 7 }], total: 7, p50: 1, p90: 1, p99: 1 },
      {
        key: 'sda',
        buckets: [
          { low: 64, high: 128, count: 3 },
          { low: 256, high: 512, count: 1 },
        ],
        total: 4,
        p50: 128,
        p90: 512,
        p99: 512,
      },
    ],
  });
});

test('the bar chart matches bpftrace, including float rounding of bar widths', (t) => {
  const text = renderHistogramText([
    { min: 1, max: 1, count: 3 },
    { min: 2, max: 3, count: 1 },
    { min: 4, max: 7, count: 2 },
  ]);
  t.is(
    text,
    '[1]                    3 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n' +
      '[2, 4)                 1 |@@@@@@@@@@@@@@@@@                                   |\n' +
      '[4, 8)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@                  |\n',
  );
  t.true(renderHistogramText([{ min: 1048576, max: 2097151, count: 1 }]).startsWith('[1M, 2M)'));
  t.true(renderHistogramText([{ min: 1099511627776, max: 2199023255551, count: 1 }]).startsWith('[1T, 2T)'));
});
