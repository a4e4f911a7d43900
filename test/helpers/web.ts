import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/web/app.ts';
import type { WebContext } from '../../src/web/context.ts';
import type { TestFarm } from './farm.ts';

/**
 * The web application over a test farm: its registry and directories, 1 MiB uploads, reads open
 * to all, builders healthy for two minutes after a heartbeat; `over` changes any of these.
 */
export function farmApp(farm: TestFarm, over: Partial<WebContext> = {}): Promise<FastifyInstance> {
  return buildApp({
    registry: farm.registry,
    accepted: farm.accepted,
    results: farm.results,
    repos: join(farm.root, 'repos'),
    incoming: farm.incoming,
    uploadMaxBytes: 1024 * 1024,
    readRequiresToken: false,
    healthyWithinMs: 120_000,
    ...over,
  });
}
