// npm run cluster:up [-- --quiet] [-- --real-node]: builds (once) and starts the local control plane;
// with --real-node also a real node (containerd + kubelet, test/cluster/real-node.ts).
import { clusterPaths } from './paths.ts';
import { up } from './control-plane.ts';
import { upRealNode } from './real-node.ts';

const quiet = process.argv.includes('--quiet');
const paths = clusterPaths();
try {
  const log = (line: string): void => (quiet ? undefined : console.error(`cluster:up: ${line}`));
  await up(log, paths);
  if (process.argv.includes('--real-node')) await upRealNode(log, paths);
  console.log(`export KUBECONFIG=${paths.kubeconfig}`);
} catch (error) {
  console.error(`cluster:up: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
