import test from 'ava';
import { matchesAll, parseMatcherList, parseMatchers } from '../../src/tracetrigger/matchers.ts';

const parse = (text: string) => {
  const r = parseMatchers(text);
  if (!r.ok) throw new Error(r.error);
  return r.matchers;
};

test('the four operators, quoted and unquoted values', (t) => {
  t.like(parse('alertname="NodeDiskLatencyHigh"')[0], { name: 'alertname', op: '=', value: 'NodeDiskLatencyHigh' });
  t.like(parse('severity!=info')[0], { name: 'severity', op: '!=', value: 'info' });
  t.like(parse('severity=~"warning|critical"')[0], { op: '=~', value: 'warning|critical' });
  t.like(parse(' job !~ "node.*" ')[0], { name: 'job', op: '!~', value: 'node.*' });
});

test('a braced list of several matchers, with escapes and commas inside quotes', (t) => {
  const m = parse('{alertname="A,B", summary="say \\"hi\\"", team=~"db|storage"}');
  t.is(m.length, 3);
  t.is(m[0]?.value, 'A,B');
  t.is(m[1]?.value, 'say "hi"');
});

test('regexes are anchored, as in Alertmanager', (t) => {
  const m = parse('severity=~"warn"');
  t.true(matchesAll(m, { severity: 'warn' }));
  t.false(matchesAll(m, { severity: 'warning' }));
  t.false(matchesAll(parse('x=~"a|b"'), { x: 'ab' }));
});

test('an absent label is the empty string', (t) => {
  t.true(matchesAll(parse('team!="db"'), {}));
  t.true(matchesAll(parse('team=""'), {}));
  t.false(matchesAll(parse('team=~".+"'), {}));
});

test('all matchers must match', (t) => {
  const list = parseMatcherList(['alertname="NodeDiskLatencyHigh"', 'severity=~"warning|critical"']);
  if (!list.ok) throw new Error(list.error);
  t.true(matchesAll(list.matchers, { alertname: 'NodeDiskLatencyHigh', severity: 'critical' }));
  t.false(matchesAll(list.matchers, { alertname: 'NodeDiskLatencyHigh', severity: 'info' }));
  t.false(matchesAll(list.matchers, { alertname: 'Other', severity: 'critical' }));
});

test('bad matchers are refused with a message naming the entry', (t) => {
  for (const bad of [
    'alertname',
    '="x"',
    'a=="x"',
    'a="unterminated',
    'a=~"("',
    '{a="x"',
    'a="x" b="y"',
    '9a="x"',
    'a=~"(?=x)"',
  ]) {
    const r = parseMatchers(bad);
    t.false(r.ok, bad);
    if (!r.ok) t.true(r.error.includes(JSON.stringify(bad)), r.error);
  }
  const list = parseMatcherList(['ok="1"', 'bad', 'also=~"["']);
  t.false(list.ok);
  if (!list.ok) t.regex(list.error, /"bad".*; .*"also=~\\"\[\\""/);
});
