// ava configuration of the real-node end-to-end tests:
//   npx ava --config test/real-node/ava.config.js
// They need the local control plane with a real node
// (`npm run cluster:up -- --real-node`). Their files end in .e2e.ts so the
// main `ava` run (test/**/*.test.ts) never picks them up.
export default {
  extensions: ['ts'],
  files: ['test/real-node/**/*.e2e.ts'],
  // A trace runs for tens of seconds and bpftrace compiles with LLVM; on 2 cores give each test room.
  timeout: '4m',
  concurrency: 1,
};
