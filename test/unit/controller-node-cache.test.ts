// What the Node cache keeps of a Node (src/controller/node-cache.ts trimNode).
import test from 'ava';
import type { V1Node } from '@kubernetes/client-node';
import { trimNode } from '../../src/controller/node-cache.ts';
import type { KubeObject } from '../../src/runtime/objects.ts';

test('a Node keeps its name, labels, InternalIPs and Ready condition with the reason and message, nothing else', (t) => {
  const node: V1Node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', uid: 'u1', resourceVersion: '7', labels: { 'kubernetes.io/hostname': 'h1' } },
    status: {
      conditions: [
        { type: 'MemoryPressure', status: 'False' },
        { type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' },
      ],
      addresses: [
        { type: 'InternalIP', address: '10.0.0.1' },
        { type: 'Hostname', address: 'h1' },
      ],
      images: [{ names: ['big:1'], sizeBytes: 1 }],
      capacity: { cpu: '2' },
    },
  };
  const trimmed = trimNode(node as KubeObject);
  t.deepEqual(trimmed.status, {
    conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' }],
    addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
  });
  t.deepEqual(trimmed.metadata.labels, { 'kubernetes.io/hostname': 'h1' });
  t.is(trimmed.metadata.name, 'n1');
});

test('a Node that never reported its status keeps no conditions', (t) => {
  const trimmed = trimNode({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n2' } } as KubeObject);
  t.deepEqual(trimmed.status?.conditions, []);
});
