// A watch stream in Kubernetes' protobuf form
// (Accept: application/vnd.kubernetes.protobuf;stream=watch): frames of a
// 4-byte big-endian length and a metav1.WatchEvent {type = 1, object = 2},
// whose object is a runtime.RawExtension {raw = 1} holding the object as the
// API server stores it: the magic "k8s\0", then a runtime.Unknown
// {typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2}. An ERROR event's object
// is a metav1.Status; a BOOKMARK's is the watched kind with only metadata.
import type { KubeObject, RawWatchEvent, Status } from './objects.ts';
import { ProtobufError, ProtoReader } from './protobuf-reader.ts';

export const PROTOBUF_TYPE = 'application/vnd.kubernetes.protobuf';
export const PROTOBUF_WATCH_TYPE = `${PROTOBUF_TYPE};stream=watch`;

/** Reads one object of the watched kind from its protobuf message (the Unknown's raw). */
export type ProtobufDecoder = (object: ProtoReader) => KubeObject;

const MAGIC = [0x6b, 0x38, 0x73, 0x00];
const EVENT_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** Splits the byte stream into frames; throws when it ends inside one. */
export async function* protobufFrames(chunks: AsyncIterable<Buffer>): AsyncGenerator<Uint8Array, void, undefined> {
  let buffer: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    let offset = 0;
    while (buffer.length - offset >= 4) {
      const length = buffer.readUInt32BE(offset);
      if (buffer.length - offset - 4 < length) break;
      yield buffer.subarray(offset + 4, offset + 4 + length);
      offset += 4 + length;
    }
    buffer = buffer.subarray(offset);
  }
  if (buffer.length > 0) throw new ProtobufError(`the stream ended inside a frame (${buffer.length} bytes left)`);
}

/** The kind and the object's own message from the "k8s\0" + runtime.Unknown envelope. */
function unwrap(raw: Uint8Array): { kind: string; object: ProtoReader } {
  if (raw.length < 4 || MAGIC.some((b, i) => raw[i] !== b))
    throw new ProtobufError('an object does not start with the Kubernetes protobuf magic "k8s\\0"');
  const unknown = new ProtoReader(raw, 4);
  let kind = '';
  let object: ProtoReader | undefined;
  while (unknown.next()) {
    if (unknown.field === 1) {
      const typeMeta = unknown.message();
      while (typeMeta.next()) {
        if (typeMeta.field === 2) kind = typeMeta.string();
        else typeMeta.skip();
      }
    } else if (unknown.field === 2) object = unknown.message();
    else unknown.skip();
  }
  if (object === undefined) throw new ProtobufError(`a ${kind || 'watch'} object has no raw bytes`);
  return { kind, object };
}

function readStatus(status: ProtoReader): Status {
  const result: Status = { kind: 'Status', apiVersion: 'v1' };
  while (status.next()) {
    if (status.field === 2) result.status = status.string() === 'Success' ? 'Success' : 'Failure';
    else if (status.field === 3) result.message = status.string();
    else if (status.field === 4) result.reason = status.string();
    else if (status.field === 6) result.code = status.int32();
    else status.skip();
  }
  return result;
}

/** A metav1.Status in its envelope, as an error response's body; undefined when it is something else. */
export function statusFromProtobuf(body: Uint8Array): Status | undefined {
  try {
    const { kind, object } = unwrap(body);
    return kind === 'Status' ? readStatus(object) : undefined;
  } catch {
    return undefined;
  }
}

/** One frame as the watcher's RawWatchEvent, the object read by `decode` (a Status for ERROR). */
export function decodeWatchEvent(frame: Uint8Array, decode: ProtobufDecoder): RawWatchEvent {
  const event = new ProtoReader(frame);
  let type = '';
  let raw: Uint8Array | undefined;
  while (event.next()) {
    if (event.field === 1) type = event.string();
    else if (event.field === 2) {
      const extension = event.message();
      while (extension.next()) {
        if (extension.field === 1) raw = extension.bytes();
        else extension.skip();
      }
    } else event.skip();
  }
  if (!EVENT_TYPES.has(type)) throw new ProtobufError(`unknown event type ${JSON.stringify(type)}`);
  if (raw === undefined) throw new ProtobufError(`a ${type} event has no object`);
  const { kind, object } = unwrap(raw);
  return {
    type: type as RawWatchEvent['type'],
    object: kind === 'Status' ? readStatus(object) : decode(object),
  };
}
