// The local control plane itself: simulated nodes are Ready, the scheduler,
// kwok and the Job controller run a plain Job to completion, and the garbage
// collector removes its pod when the Job is deleted.
import test from 'ava';
import { clusterAvailable, createTestNamespace, kubectl } from '../support/cluster.ts';
import { K8S_VERSION } from '../cluster/paths.ts';
import { eventually } from '../support/eventually.ts';

test.before(() => {
  if (!clusterAvailable())
    throw new Error('the local control plane is not running: start it with `npm run cluster:up`');
});

interface NodeList {
  items: {
    metadata: { name: string; labels: Record<string, string> };
    status: { conditions: { type: string; status: string }[] };
  }[];
}

test('the API server reports the version it was built as', async (t) => {
  const result = await kubectl(['version', '-o', 'json']);
  t.is(result.exitCode, 0, result.stderr);
  t.is((JSON.parse(result.stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion, K8S_VERSION);
});

test('the kwok nodes are Ready, one with a hostname label that differs from its name', async (t) => {
  const result = await kubectl(['get', 'nodes', '-o', 'json']);
  t.is(result.exitCode, 0, result.stderr);
  const nodes = (JSON.parse(result.stdout) as NodeList).items;
  t.true(nodes.length >= 2);
  for (const node of nodes) {
    const ready = node.status.conditions.find((c) => c.type === 'Ready');
    t.is(ready?.status, 'True', `node ${node.metadata.name} is not Ready`);
  }
  t.true(nodes.some((n) => n.metadata.labels['kubernetes.io/hostname'] !== n.metadata.name));
});

test('a plain Job is scheduled, runs to Succeeded, and deleting it garbage-collects its pod', async (t) => {
  const ns = await createTestNamespace('cluster');
  t.teardown(ns.cleanup);
  const job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'plain', namespace: ns.name },
    spec: {
      backoffLimit: 0,
      template: {
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] },
      },
    },
  };
  const created = await kubectl(['create', '-f', '-'], { input: JSON.stringify(job) });
  t.is(created.exitCode, 0, created.stderr);

  const podName = await eventually('the Job pod is scheduled and running', async () => {
    const pods = await kubectl(
      [
        'get',
        'pods',
        '-l',
        'job-name=plain',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{"\\n"}{end}',
      ],
      { namespace: ns.name },
    );
    const [name, node, phase] = pods.stdout.trim().split(' ');
    return name !== undefined && node?.startsWith('kwok-node-') && phase === 'Running' ? name : undefined;
  });

  // kwok's test stage plays the container exiting 0 when the pod carries this annotation.
  const annotated = await kubectl(['annotate', 'pod', podName, 'kwok.trace-operator.test/exit-code=0'], {
    namespace: ns.name,
  });
  t.is(annotated.exitCode, 0, annotated.stderr);
  await eventually('the pod Succeeded and the Job completed', async () => {
    const phase = await kubectl(['get', 'pod', podName, '-o', 'jsonpath={.status.phase}'], { namespace: ns.name });
    const complete = await kubectl(
      ['get', 'job', 'plain', '-o', 'jsonpath={.status.conditions[?(@.type=="Complete")].status}'],
      { namespace: ns.name },
    );
    return phase.stdout === 'Succeeded' && complete.stdout === 'True' ? true : undefined;
  });

  const deleted = await kubectl(['delete', 'job', 'plain', '--cascade=background', '--wait=true'], {
    namespace: ns.name,
  });
  t.is(deleted.exitCode, 0, deleted.stderr);
  await eventually('the garbage collector deleted the pod', async () => {
    const pod = await kubectl(['get', 'pod', podName, '--ignore-not-found', '-o', 'name'], { namespace: ns.name });
    return pod.exitCode === 0 && pod.stdout.trim() === '' ? true : undefined;
  });
  t.pass();
});
