// node hack/real-node/build-images.ts: builds the real node's runner and
// pause images into the OCI layout cache (see images.ts) and prints their
// references as JSON. test/cluster/real-node.ts runs this before it imports
// them into the node's containerd.
import { buildImages } from './images.ts';

const started = Date.now();
try {
  const images = await buildImages((line) => console.error(`build-images: ${line}`));
  console.error(`build-images: done in ${Math.round((Date.now() - started) / 1000)}s`);
  console.log(JSON.stringify({ runner: images.runner.ref, pause: images.pause.ref, layout: images.layout.dir }));
} catch (error) {
  console.error(`build-images: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
