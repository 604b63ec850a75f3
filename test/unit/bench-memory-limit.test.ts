// The bench runs the manager under the memory limit the Deployment ships;
// it must read that limit from the manifest and understand its units.
import test from 'ava';
import { quantityBytes, shippedMemoryLimit } from '../../bench/lib/memory-limit.ts';

test('memory quantities in binary and decimal units', (t) => {
  t.is(quantityBytes('1Gi'), 2 ** 30);
  t.is(quantityBytes('256Mi'), 256 * 2 ** 20);
  t.is(quantityBytes('512M'), 512e6);
  t.is(quantityBytes('1.5Gi'), 1.5 * 2 ** 30);
  t.is(quantityBytes('1048576'), 2 ** 20);
  t.throws(() => quantityBytes('1Ti'), { message: /not a memory quantity/ });
});

test("the shipped limit is the manager container's limits.memory in config/manager/manager.yaml", (t) => {
  t.regex(shippedMemoryLimit(), /^\d+(\.\d+)?(Ki|Mi|Gi|K|M|G)?$/);
  t.true(quantityBytes(shippedMemoryLimit()) >= 256 * 2 ** 20, 'a limit the manager can run in');
});
