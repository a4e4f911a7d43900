import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEntry, scanQueue } from '../../src/incoming/queue.ts';

describe('the incoming queue', () => {
  it('reads an entry through the directory it scanned, and refuses one swapped for a link since', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pkgforge-queue-'));
    const incoming = join(root, 'incoming');
    mkdirSync(incoming);
    mkdirSync(join(incoming, 'mine'));
    writeFileSync(join(incoming, 'mine', 'build.yml'), 'mine');
    mkdirSync(join(root, 'victim'));
    writeFileSync(join(root, 'victim', 'build.yml'), 'victim');

    const [entry] = (await scanQueue(incoming)).entries;
    const opened = await openEntry(entry!);
    assert.ok(opened && 'entry' in opened);
    assert.match(opened.entry.base!, /^\/proc\/self\/fd\/\d+$/);
    // Even if the directory is swapped now, reads through `base` reach the scanned one.
    renameSync(join(incoming, 'mine'), join(root, 'moved'));
    symlinkSync(join(root, 'victim'), join(incoming, 'mine'));
    assert.equal(readFileSync(join(opened.entry.base!, 'build.yml'), 'utf8'), 'mine');
    await opened.close();
    // Opened after the swap, it is refused.
    assert.equal(await openEntry(entry!), null);
  });
});
