// npm run cluster:up [-- --quiet]: builds (once) and starts the local control plane.
import { clusterPaths } from './paths.ts';
import { up } from './control-plane.ts';

const quiet = process.argv.includes('--quiet');
const paths = clusterPaths();
try {
  await up((line) => (quiet ? undefined : console.error(`cluster:up: ${line}`)), paths);
  console.log(`export KUBECONFIG=${paths.kubeconfig}`);
} catch (error) {
  console.error(`cluster:up: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
