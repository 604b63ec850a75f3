// Where the dashboard finds its page: beside src/ when Node runs the
// sources, in the checkout's src/ when a bundled dist/ runs, and nowhere in
// an image (dist/ alone), which it says instead of serving 500s.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { pageSourceDir } from '../../src/dashboard/assets.ts';
import { REPO, tempDir } from '../fixtures/runner/harness.ts';

test('run from src/, the page is in src/', (t) => {
  t.is(pageSourceDir(path.join(REPO, 'src', 'dashboard')), path.join(REPO, 'src'));
});

test("run from a bundled dist/ in a checkout, the page is in the checkout's src/", (t) => {
  t.is(pageSourceDir(path.join(REPO, 'dist')), path.join(REPO, 'src'));
});

test('with dist/ alone, as in an image, the error says where it looked and what to run', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.teardown(cleanup);
  await mkdir(path.join(dir, 'app', 'dist'), { recursive: true });
  await writeFile(path.join(dir, 'app', 'dist', 'cli.js'), '');
  const error = t.throws(() => pageSourceDir(path.join(dir, 'app', 'dist')));
  t.regex(error.message, /dashboard\/page\/index\.html/);
  t.true(error.message.includes(path.join(dir, 'app', 'src')), error.message);
  t.regex(error.message, /run `trace-operator dashboard` from a checkout/);
});
