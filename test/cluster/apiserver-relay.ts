// The `kubernetes` Service for the real node's pods: the local cluster runs
// no kube-proxy, so this relay does its one job for that Service. It listens
// on the Service's ClusterIP (KUBERNETES_SERVICE_HOST:443, an address the
// real node adds to its pod bridge) and forwards each connection to the API
// server on 127.0.0.1. Pods reach it through their route to the service range
// (test/cluster/containerd.ts), so a pod's in-cluster configuration (the
// manager's Deployment) works unchanged. TLS passes through untouched: the API
// server's certificate names the ClusterIP, as a real cluster's does.
//   node test/cluster/apiserver-relay.ts <listen-host> <listen-port> <target-port>
import net from 'node:net';

const [host, listenPort, targetPort] = process.argv.slice(2);
if (host === undefined || listenPort === undefined || targetPort === undefined) {
  console.error('usage: apiserver-relay.ts <listen-host> <listen-port> <target-port>');
  process.exit(2);
}

const server = net.createServer((client) => {
  const upstream = net.connect(Number(targetPort), '127.0.0.1');
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.pipe(upstream).pipe(client);
});
server.on('error', (error) => {
  console.error(`apiserver-relay: ${error.message}`);
  process.exit(1);
});
server.listen(Number(listenPort), host, () => {
  console.log(`apiserver-relay: ${host}:${listenPort} -> 127.0.0.1:${targetPort}`);
});
