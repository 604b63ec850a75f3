// The runner reads `bpftrace -f json` and prints what bpftrace prints in text
// mode. The fixtures were captured from Debian's bpftrace v0.17 running
// test/fixtures/runner/golden.bt in both modes on the development machine.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { decodeEventLine, keyText, renderMapText, valueText } from '../../src/runner/bpftrace-events.ts';
import { parseBpftraceJson, JsonSyntaxError } from '../../src/runner/bpftrace-json.ts';

const fixture = (name: string) => readFile(new URL(`../fixtures/runner/${name}`, import.meta.url), 'utf8');

test('rendering bpftrace JSON gives bpftrace text output byte for byte', async (t) => {
  const json = await fixture('golden.json.txt');
  const text = await fixture('golden.text.txt');
  const lines = json.split('\n');
  lines.pop(); // the final newline
  const rendered = lines.map((line) => decodeEventLine(line).text).join('');
  t.is(rendered, text);
});

test('program text and maps are told apart by event type', async (t) => {
  const json = await fixture('golden.json.txt');
  const events = json
    .split('\n')
    .filter((l) => l !== '')
    .map(decodeEventLine);
  t.deepEqual(
    events.filter((e) => e.type === 'output').map((e) => e.text),
    [
      'hello world\n',
      'no newline',
      ' continued\n',
      'quote " tab\t backslash \\ accent é\n',
      '(1, tuple)\n',
      'value\n',
      '5\n',
    ],
  );
  const maps = events.flatMap((e) => (e.type === 'map' ? [e.map.name] : []));
  t.true(maps.includes('@h') && maps.includes('@ks') && maps.includes('@multi'));
  const attached = events.find((e) => e.type === 'attached');
  t.deepEqual(attached, { type: 'attached', probes: 1, text: 'Attaching 1 probe...\n' });
});

test('a line that is not a bpftrace event passes through unchanged', (t) => {
  t.deepEqual(decodeEventLine('plain output from system()'), { type: 'raw', text: 'plain output from system()\n' });
  t.deepEqual(decodeEventLine('{not json'), { type: 'raw', text: '{not json\n' });
  t.deepEqual(decodeEventLine(''), { type: 'raw', text: '\n' });
});

test('printf lines decode as JSON would, whatever their escapes', (t) => {
  const texts = ['tick 123\n', 'no newline', '', 'a\\nb\n', 'tab\there\n', 'quote " inside\n', 'back\\', '\n\n'];
  for (const text of texts) {
    const line = `{"type": "printf", "data": ${JSON.stringify(text)}}`;
    t.deepEqual(decodeEventLine(line), { type: 'output', text }, line);
  }
});

test('lost events are reported as bpftrace does', (t) => {
  t.deepEqual(decodeEventLine('{"type": "lost_events", "data": {"events": 12}}'), {
    type: 'lost',
    events: 12,
    text: 'Lost 12 events\n',
  });
});

test('the JSON reader keeps key order, duplicate keys and 64-bit numbers', (t) => {
  const value = parseBpftraceJson('{"2": 18446744073709551615, "1": 1, "1": 2}');
  t.deepEqual(value, {
    kind: 'object',
    entries: [
      ['2', { kind: 'number', text: '18446744073709551615' }],
      ['1', { kind: 'number', text: '1' }],
      ['1', { kind: 'number', text: '2' }],
    ],
  });
});

test("the JSON reader decodes bpftrace's sign-extended byte escapes as UTF-8", (t) => {
  t.deepEqual(parseBpftraceJson('"caf\\uffffffc3\\uffffffa9 \\u0001 \\\\uffffffc3"'), {
    kind: 'string',
    value: 'café \u0001 \\uffffffc3',
  });
  // A lone byte that is not UTF-8 becomes U+FFFD rather than failing.
  t.deepEqual(parseBpftraceJson('"\\uffffffff"'), { kind: 'string', value: '\uFFFD' });
});

test('the JSON reader rejects malformed input', (t) => {
  for (const bad of ['{"a": }', '[1,', '"open', '{"a" 1}', '1 2', 'nul']) {
    t.throws(() => parseBpftraceJson(bad), { instanceOf: JsonSyntaxError }, bad);
  }
});

test('values render as bpftrace text', (t) => {
  t.is(valueText(parseBpftraceJson('[1,"x",[2,"y"]]')), '(1, x, (2, y))');
  t.is(valueText(parseBpftraceJson('{"a": 1, "b": "s"}')), '{ .a = 1, .b = s }');
  t.is(keyText('1,a'), '1, a');
  t.is(keyText('\n    frame+1\n    frame+2\n'), '\n    frame+1\n    frame+2\n');
});

test('stack keys and values keep their layout', (t) => {
  const event = decodeEventLine('{"type": "map", "data": {"@": {"\\n    f1+1\\n    f2+2\\n": 3, "\\n    g+1\\n": 5}}}');
  t.is(event.text, '@[\n    f1+1\n    f2+2\n]: 3\n@[\n    g+1\n]: 5\n');
  const stackValues = decodeEventLine('{"type": "map", "data": {"@s": {"1": "\\n    f1\\n", "2": "\\n    f2\\n"}}}');
  t.is(stackValues.text, '@s[1]: \n    f1\n@s[2]: \n    f2\n\n');
});

test('an empty histogram renders only its name', (t) => {
  t.is(renderMapText({ name: '@h', kind: 'histogram', histograms: [{ buckets: [] }] }), '@h: \n\n');
});
