// The protobuf watch stream's framing and envelope, on messages this test
// writes field by field (the API server's own objects are compared with the
// JSON path in test/integration/cache-protobuf.test.ts; an ERROR event could
// not be had from it on demand, hence the hand-made frames here).
import { Readable } from 'node:stream';
import test from 'ava';
import { ProtoReader, readTime } from '../../src/runtime/protobuf-reader.ts';
import { decodeWatchEvent, protobufFrames, statusFromProtobuf } from '../../src/runtime/watch-protobuf.ts';

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
const field = (n: number, bytes: number[]): number[] => [...varint(n * 8 + 2), ...varint(bytes.length), ...bytes];
const intField = (n: number, value: number): number[] => [...varint(n * 8), ...varint(value)];
const str = (s: string): number[] => [...Buffer.from(s)];
const envelope = (kind: string, raw: number[]): number[] => [
  0x6b,
  0x38,
  0x73,
  0x00,
  ...field(1, [...field(1, str('v1')), ...field(2, str(kind))]),
  ...field(2, raw),
];
const event = (type: string, object: number[]): Uint8Array =>
  Uint8Array.from([...field(1, str(type)), ...field(2, field(1, object))]);
const frame = (bytes: Uint8Array): Buffer => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes.length);
  return Buffer.concat([head, bytes]);
};
const nameOnly = (object: ProtoReader) => {
  let name = '';
  while (object.next()) {
    if (object.field === 1) {
      const meta = object.message();
      while (meta.next()) {
        if (meta.field === 1) name = meta.string();
        else meta.skip();
      }
    } else object.skip();
  }
  return { metadata: { name } };
};

test('an ERROR event carries the Status: code, reason and message', (t) => {
  const status = [
    ...field(2, str('Failure')),
    ...field(3, str('too old resource version: 1 (42)')),
    ...field(4, str('Expired')),
    ...intField(6, 410),
  ];
  t.deepEqual(decodeWatchEvent(event('ERROR', envelope('Status', status)), nameOnly), {
    type: 'ERROR',
    object: {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      message: 'too old resource version: 1 (42)',
      reason: 'Expired',
      code: 410,
    },
  });
});

test('other events carry the object the decoder reads, unknown fields skipped', (t) => {
  const pod = [
    ...field(1, [...field(1, str('trace-pod')), ...intField(7, 3)]),
    ...field(9, str('ignored')),
    ...intField(10, 5),
  ];
  t.deepEqual(decodeWatchEvent(event('MODIFIED', envelope('Pod', pod)), nameOnly), {
    type: 'MODIFIED',
    object: { metadata: { name: 'trace-pod' } },
  });
});

test('a malformed event says what is wrong', (t) => {
  t.throws(() => decodeWatchEvent(event('RENAMED', envelope('Pod', [])), nameOnly), {
    message: /unknown event type "RENAMED"/,
  });
  t.throws(() => decodeWatchEvent(event('ADDED', [1, 2, 3, 4]), nameOnly), { message: /magic/ });
  t.throws(() => decodeWatchEvent(Uint8Array.from([...field(1, str('ADDED')), 0x12, 0x7f]), nameOnly), {
    message: /runs past the end/,
  });
});

test('frames are found across chunk boundaries, and a stream cut inside one is an error', async (t) => {
  const one = frame(event('ADDED', envelope('Pod', field(1, field(1, str('a'))))));
  const two = frame(event('DELETED', envelope('Pod', field(1, field(1, str('b'))))));
  const bytes = Buffer.concat([one, two]);
  const chunks = [bytes.subarray(0, 3), bytes.subarray(3, one.length + 6), bytes.subarray(one.length + 6)];
  const names: string[] = [];
  for await (const f of protobufFrames(Readable.from(chunks)))
    names.push(String((decodeWatchEvent(f, nameOnly).object as { metadata: { name: string } }).metadata.name));
  t.deepEqual(names, ['a', 'b']);
  await t.throwsAsync(
    async () => {
      for await (const _ of protobufFrames(Readable.from([bytes.subarray(0, one.length + 2)]))) void _;
    },
    { message: /ended inside a frame/ },
  );
});

test('times read as JSON writes them: seconds in UTC, a zero time null', (t) => {
  t.is(readTime(new ProtoReader(Uint8Array.from(intField(1, 1764702000)))), '2025-12-02T19:00:00Z');
  t.is(readTime(new ProtoReader(new Uint8Array())), null);
});

test('an error response in protobuf reads as its Status; anything else as nothing', (t) => {
  const forbidden = [
    ...field(2, str('Failure')),
    ...field(3, str('pods is forbidden')),
    ...field(4, str('Forbidden')),
    ...intField(6, 403),
  ];
  t.deepEqual(statusFromProtobuf(Uint8Array.from(envelope('Status', forbidden))), {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: 'pods is forbidden',
    reason: 'Forbidden',
    code: 403,
  });
  t.is(statusFromProtobuf(Uint8Array.from(envelope('Pod', []))), undefined);
  t.is(statusFromProtobuf(Buffer.from('{"kind":"Status"}')), undefined);
});
