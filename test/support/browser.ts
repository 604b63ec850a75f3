// Debian's Chromium (/usr/bin/chromium), headless, driven by playwright-core:
// a fresh profile per launch, and the flags Chromium needs on this machine
// (no sandbox as root, no GPU, and nothing that reaches out to the network).
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'trace-operator-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 900 },
    deviceScaleFactor: 1,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
/** Where browser tests keep their screenshots (a CI artifact; git-ignored). */
export const SCREENSHOT_DIR = path.join(repoRoot, 'test-results', 'screenshots');
const DOCS_IMAGES = path.join(repoRoot, 'docs', 'images');

/**
 * A full-page screenshot into test-results/screenshots/NAME.png; with
 * UPDATE_DOCS_IMAGES=1 also into docs/images/ (the README shows those).
 */
export async function screenshot(page: Page | Locator, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  if ('goto' in page) await page.screenshot({ path: file, fullPage: true });
  else await page.screenshot({ path: file });
  if (process.env['UPDATE_DOCS_IMAGES'] === '1') {
    await mkdir(DOCS_IMAGES, { recursive: true });
    await copyFile(file, path.join(DOCS_IMAGES, `${name}.png`));
  }
  return file;
}
