import test from 'ava';
import {
  CONDITION_TYPES,
  REASONS,
  findCondition,
  isConditionTrue,
  isStartProblem,
  setCondition,
} from '../../src/tracejob/conditions.ts';
import { toRfc3339 } from '../../src/tracejob/time.ts';

const t0 = new Date('2024-01-01T00:00:00.500Z');
const t1 = new Date('2024-01-01T00:01:00Z');

test('setCondition appends a new condition with the transition time and generation', (t) => {
  const list = setCondition(undefined, { type: 'Accepted', status: 'True', reason: 'Valid', message: 'ok' }, t0, 3);
  t.deepEqual(list, [
    {
      type: 'Accepted',
      status: 'True',
      reason: 'Valid',
      message: 'ok',
      lastTransitionTime: '2024-01-01T00:00:00Z',
      observedGeneration: 3,
    },
  ]);
});

test('setCondition keeps lastTransitionTime when the status does not change, updates it when it does', (t) => {
  const first = setCondition([], { type: 'Running', status: 'False', reason: 'Pending', message: 'a' }, t0);
  const same = setCondition(first, { type: 'Running', status: 'False', reason: 'ImagePullBackOff', message: 'b' }, t1);
  t.is(same[0]?.lastTransitionTime, '2024-01-01T00:00:00Z');
  t.is(same[0]?.reason, 'ImagePullBackOff');
  t.is(same[0]?.message, 'b');
  const flipped = setCondition(same, { type: 'Running', status: 'True', reason: 'Running', message: 'c' }, t1);
  t.is(flipped[0]?.lastTransitionTime, '2024-01-01T00:01:00Z');
  t.is(flipped.length, 1);
  t.is(first.length, 1, 'the input list is not modified');
  t.is(first[0]?.reason, 'Pending');
});

test('setCondition keeps other types and their order; caps long messages', (t) => {
  let list = setCondition([], { type: 'A', status: 'True', reason: 'R', message: '' }, t0);
  list = setCondition(list, { type: 'B', status: 'True', reason: 'R', message: 'x'.repeat(40000) }, t0);
  list = setCondition(list, { type: 'A', status: 'False', reason: 'R', message: '' }, t1);
  t.deepEqual(
    list.map((c) => c.type),
    ['A', 'B'],
  );
  t.is(list[1]?.message.length, 32768);
  t.true(list[1]?.message.endsWith('...'));
});

test('findCondition and isConditionTrue', (t) => {
  const list = setCondition([], { type: 'Failed', status: 'True', reason: 'OOMKilled', message: '' }, t0);
  t.is(findCondition(list, 'Failed')?.reason, 'OOMKilled');
  t.is(findCondition(list, 'Succeeded'), undefined);
  t.true(isConditionTrue(list, 'Failed'));
  t.false(isConditionTrue(list, 'Succeeded'));
  t.false(isConditionTrue(undefined, 'Failed'));
});

test('condition types and reasons are valid metav1.Condition values', (t) => {
  for (const v of Object.values(CONDITION_TYPES)) t.regex(v, /^[A-Z][A-Za-z]*$/);
  for (const v of Object.values(REASONS)) t.regex(v, /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/);
  t.is(toRfc3339(new Date('2024-02-03T04:05:06.789Z')), '2024-02-03T04:05:06Z');
});

test('start problems are Running/Scheduled=False with a reason beyond routine waiting', (t) => {
  const c = (type: string, status: 'True' | 'False', reason: string) => ({ type, status, reason, message: '' });
  t.true(isStartProblem(c('Running', 'False', 'ImagePullBackOff')));
  t.true(isStartProblem(c('Scheduled', 'False', 'Unschedulable')));
  t.true(isStartProblem(c('Running', 'False', 'ServiceAccountNotFound')));
  t.false(isStartProblem(c('Running', 'False', 'ContainerCreating')));
  t.false(isStartProblem(c('Running', 'False', 'Finished')));
  t.false(isStartProblem(c('Running', 'True', 'Running')));
  t.false(isStartProblem(c('Failed', 'False', 'Whatever')));
});
