import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runClaim } from '../../src/buildd/daemon.ts';
import { builddSettings } from '../../src/buildd/setup.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { builderIdentity, claimNextTask } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail, markJobValid } from '../../src/registry/jobs.ts';
import { createToken } from '../../src/registry/tokens.ts';
import { silentLog } from '../../src/util/log.ts';
import { addPlatforms, makeFarm, type TestFarm, submitTo } from '../helpers/farm.ts';
import { buildRpm, specFor, srpm } from '../helpers/srpm.ts';
import { farmApp } from '../helpers/web.ts';

/** Screenshots of the main pages are kept here (ignored by git) for a person to look at. */
const SHOTS = join(import.meta.dirname, '..', '..', 'test-output');

describe('the web interface in a real browser (Debian chromium)', () => {
  let farm: TestFarm;
  let app: FastifyInstance;
  let base: string;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    farm = await makeFarm('sqlite');
    await addPlatforms(farm, 'el9/x86_64*', 'f40/x86_64*');
    await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
    app = await farmApp(farm);
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({
      executablePath: process.env.PKGFORGE_TEST_CHROMIUM ?? '/usr/bin/chromium',
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
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await farm?.dispose();
  });

  async function submit(id: string, files: string[]) {
    await submitTo(farm, id, files, { submitter: 'tester' });
    assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
  }

  it('lists jobs and opens a job built during the test, following its live log as it grows', async () => {
    await submit('live', [
      buildRpm(
        specFor('ticker').replace('%install', '%build\nfor i in 1 2 3 4; do echo tick-$i; sleep 1; done\n%install'),
      ),
    ]);
    const settings = builddSettings(
      loadConfig({
        files: [],
        env: { PKGFORGE_HOME: farm.root, HOME: farm.root },
        overrides: { repos: join(farm.root, 'repos'), sandbox_dir: farm.builds },
      }),
    );
    const claim = (await claimNextTask(
      farm.registry,
      (await builderIdentity(farm.registry.db, 'b1'))!,
      'h[1]',
      60_000,
    ))!;
    const building = runClaim(
      {
        registry: farm.registry,
        name: 'b1',
        dirs: { accepted: farm.accepted, results: farm.results, tmpdir: join(farm.root, 'tmp') },
        settings,
        log: silentLog,
      },
      claim,
      { stop: new AbortController().signal, abort: new AbortController().signal },
    );

    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'live' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'jobs.png'), fullPage: true });
    await page.getByRole('link', { name: 'live' }).click();
    await page.locator('#matrix').waitFor();
    // A task builds: the job says so, not `registered`.
    assert.equal(await page.textContent('#job-status'), 'building');
    await page.screenshot({ path: join(SHOTS, 'job.png'), fullPage: true });
    await page.locator('#matrix a').first().click();
    // The log grows while the build runs: first one tick, later another.
    await page.waitForFunction(() => document.getElementById('log')?.textContent?.includes('tick-1'));
    await page.waitForFunction(() => document.getElementById('log')?.textContent?.includes('tick-3'));
    assert.equal(await page.textContent('#task-status'), 'building');
    // Gone if the page were loaded again.
    await page.evaluate(() => ((window as unknown as { sameLoad: boolean }).sameLoad = true));
    await page.screenshot({ path: join(SHOTS, 'task.png'), fullPage: true });
    await page.waitForFunction(() => document.getElementById('log')?.dataset.ended === 'true', undefined, {
      timeout: 30_000,
    });
    assert.match((await page.textContent('#log'))!, /finished: success/);
    assert.equal((await building).status, 'success');
    // The page's status follows the end of the build, without a reload.
    await page.locator('#task-status', { hasText: 'success' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { sameLoad?: boolean }).sameLoad), true);
  });

  it("shows the built job's durations, its products with links, and how to install it with dnf", async () => {
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.goto(`${base}/jobs/live`);
    const cell = page.locator('#matrix td').first();
    // The build slept 4 s: its build time says so; el9 ended, so its total is there too.
    const times = /^queued \d+ (?:ms|s) · built (\d+) s · total (\d+) s$/.exec(
      (await cell.locator('.times').textContent())!,
    );
    assert.ok(times && Number(times[1]) >= 4 && Number(times[2]) >= Number(times[1]), String(times));
    assert.match((await page.textContent('#took'))!, /\d+ (ms|s)/);
    const rpm = cell.getByRole('link', { name: 'ticker-1.0-1.noarch.rpm' });
    const download = await fetch(new URL((await rpm.getAttribute('href'))!, base));
    assert.equal(download.status, 200);
    assert.equal(download.headers.get('content-type'), 'application/x-rpm');
    assert.ok(await cell.getByRole('link', { name: 'build.log' }).isVisible());
    assert.match(
      (await page.textContent('pre.dnf'))!,
      new RegExp(
        `^curl -o /etc/yum.repos.d/pkgforge-devel-el9-x86_64.repo ${base}/repos/devel/el9-x86_64.repo\ndnf install ticker$`,
      ),
    );
    await page.screenshot({ path: join(SHOTS, 'job-built.png'), fullPage: true });
    await page.goto(`${base}/jobs/live/el9-x86_64`);
    assert.ok(Number(/built (\d+) s/.exec((await page.textContent('#durations'))!)?.[1]) >= 4);
    // Its bucket's page: what is published, and the line to add the repository.
    await page.goto(`${base}/jobs/live`);
    await Promise.all([page.waitForEvent('load'), page.getByRole('link', { name: 'devel', exact: true }).click()]);
    const repo = page.locator('#yum-el9-x86_64');
    assert.match((await repo.locator('pre.dnf').textContent())!, /el9-x86_64\.repo$/);
    assert.ok(await repo.getByRole('link', { name: 'ticker' }).isVisible());
    await page.screenshot({ path: join(SHOTS, 'bucket.png'), fullPage: true });
    await repo.getByRole('link', { name: 'ticker' }).click();
    await page.locator('#builds').waitFor();
    assert.match((await page.textContent('#builds'))!, /live/);
    await page.screenshot({ path: join(SHOTS, 'package.png'), fullPage: true });
    // The bucket's Atom feed is well-formed XML to the browser's parser, with the finished job's entry.
    await page.goto(`${base}/?bucket=devel`);
    const feed = await page.evaluate(
      async (url) => {
        const doc = new DOMParser().parseFromString(await (await fetch(url)).text(), 'application/xml');
        return {
          error: doc.querySelector('parsererror')?.textContent ?? null,
          root: doc.documentElement.namespaceURI,
          titles: [...doc.querySelectorAll('entry > title')].map((t) => t.textContent),
        };
      },
      (await page.getAttribute('#feed', 'href'))!,
    );
    assert.deepEqual(feed, { error: null, root: 'http://www.w3.org/2005/Atom', titles: [] });
  });

  it('shows an entry refused before it became a job on the jobs page, with its reason', async () => {
    await submitTo(farm, 'unloadable', [srpm('hello')], { submitter: 'tester' });
    writeFileSync(join(farm.incoming, 'unloadable', 'build.yml'), 'id: [unclosed\n');
    const pass = await runIncomingPass({ ...farm.ctx(), waitForJobMs: 0 });
    assert.equal(pass.outcomes[0]?.kind, 'invalid', JSON.stringify(pass.outcomes));
    await page.goto(`${base}/`);
    const row = page.locator('#refused tr', { hasText: 'unloadable' });
    await row.waitFor();
    assert.match((await row.textContent())!, /invalid/);
    assert.match((await row.locator('.reason').textContent())!, /build\.yml/);
    await page.screenshot({ path: join(SHOTS, 'jobs-refused.png'), fullPage: true });
  });

  it('cancels a waiting job with the button', async () => {
    await submit('waiting', [srpm('hello')]);
    const { token } = await createToken(farm.registry.db, 'webuser');
    await page.goto(`${base}/jobs/waiting`);
    await page.evaluate((t) => localStorage.setItem('pkgforge-token', t), token);
    await Promise.all([page.waitForEvent('load'), page.click('#cancel')]);
    await page.getByText('cancelled by webuser').first().waitFor();
    const job = (await getJobDetail(farm.registry.db, 'waiting'))!;
    assert.equal(job.status, 'cancelled');
    assert.ok(job.tasks.every((t) => t.status === 'cancelled'));
  });

  it("cancels and retries one task with the task page's buttons", async () => {
    await submit('one-task', [srpm('hello')]);
    const { token } = await createToken(farm.registry.db, 'taskuser');
    await page.goto(`${base}/jobs/one-task/f40-x86_64`);
    await page.evaluate((t) => localStorage.setItem('pkgforge-token', t), token);
    const statuses = async () =>
      Object.fromEntries((await getJobDetail(farm.registry.db, 'one-task'))!.tasks.map((t) => [t.platform, t.status]));
    await Promise.all([page.waitForEvent('load'), page.click('#cancel')]);
    await page.locator('#task-status', { hasText: 'cancelled' }).waitFor();
    assert.deepEqual(await statuses(), { el9: 'needs build', f40: 'cancelled' });
    await Promise.all([page.waitForEvent('load'), page.click('#retry')]);
    await page.locator('#task-status', { hasText: 'needs build' }).waitFor();
    assert.deepEqual(await statuses(), { el9: 'needs build', f40: 'needs build' });
    assert.deepEqual(dialogs, []);
  });

  it('shows a package name holding <script> as text', async () => {
    await submit('hostile', [srpm('hello')]);
    await markJobValid(farm.registry, 'hostile', [
      { position: 0, name: '<script>alert("xss")</script>', version: '1', release: '1' },
    ]);
    await page.goto(`${base}/jobs/hostile`);
    assert.equal(await page.textContent('#packages .pkg-name'), '<script>alert("xss")</script>');
    assert.deepEqual(dialogs, []);
    await page.goto(`${base}/queue`);
    await page.screenshot({ path: join(SHOTS, 'queue.png'), fullPage: true });
    await page.goto(`${base}/builders`);
    await page.screenshot({ path: join(SHOTS, 'builders.png'), fullPage: true });
    // A phone's width: nothing may need a horizontal scroll of the whole page.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/jobs/live`);
    await page.screenshot({ path: join(SHOTS, 'job-phone.png'), fullPage: true });
    assert.ok(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1),
      'the job page fits a phone screen',
    );
  });
});
