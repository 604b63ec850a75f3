// npm run cluster:down: stops every process of the local control plane and drops its state.
import { clusterPaths } from './paths.ts';
import { down } from './control-plane.ts';

try {
  await down((line) => console.error(`cluster:down: ${line}`), clusterPaths());
} catch (error) {
  console.error(`cluster:down: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
