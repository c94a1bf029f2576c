import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaRouter } from './replica-router.js';

/** A loopback server that answers its path back, or (with `hold`) holds its replies until `release`. */
async function replica(options: { hold?: boolean; status?: number } = {}) {
  const held: ServerResponse[] = [];
  let holding = options.hold === true;
  const paths: string[] = [];
  const server: Server = createServer((request, response) => {
    paths.push(request.url ?? '');
    if (holding) held.push(response);
    else response.writeHead(options.status ?? 200).end(request.url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    url,
    paths,
    /** Answer the held replies, and answer at once from now on. */
    release: () => {
      holding = false;
      for (const response of held.splice(0)) response.writeHead(200).end('late');
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    server,
  };
}

const open: { stop: () => Promise<void>; server: Server }[] = [];
afterEach(async () => {
  for (const item of open.splice(0)) {
    item.server.closeAllConnections();
    await item.stop();
  }
});

describe('ReplicaRouter', () => {
  it("sends each request to the replica with the fewest outstanding, mapping the first replica's URLs onto it", async () => {
    const slow = await replica({ hold: true });
    const fast = await replica();
    open.push(slow, fast);
    const router = new ReplicaRouter([slow.url, fast.url]);
    const pending = router.fetch(`${slow.url}/completions`, { method: 'POST', body: '{}' }); // a tie: the first replica
    while (slow.paths.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    for (let i = 0; i < 5; i += 1) {
      const response = await router.fetch(`${slow.url}/completions?i=${i}`, { method: 'POST', body: '{}' });
      expect(await response.text()).toBe(`/v1/completions?i=${i}`); // answered by the free replica
    }
    const root = await router.fetch(`${slow.url.replace(/\/v1$/, '')}/tokenize`, { method: 'POST', body: '{}' });
    expect(await root.text()).toBe('/tokenize'); // the root (vLLM's /tokenize) maps onto the chosen replica's root
    expect(fast.paths).toHaveLength(6);
    slow.release();
    expect(await (await pending).text()).toBe('late');
    // nothing outstanding now: the replica that has had fewer requests gets the next one
    await (await router.fetch(`${slow.url}/models`)).text();
    expect(slow.paths).toEqual(['/v1/completions', '/v1/models']);
    expect(router.stats()).toEqual([
      { base_url: slow.url, requests: 2, failures: 0 },
      { base_url: fast.url, requests: 6, failures: 0 },
    ]);
  });

  it('sends a request that meets a 503 or a refused connection to another replica at once, and sets the failed one aside', async () => {
    const down = await replica({ status: 503 });
    const gone = await replica();
    const up = await replica();
    open.push(down, up);
    await gone.stop();
    let now = 0;
    const router = new ReplicaRouter([down.url, gone.url, up.url], () => now);
    const response = await router.fetch(`${down.url}/completions`, { method: 'POST', body: '{"n":1}' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('/v1/completions');
    expect(router.stats().map((stats) => stats.failures)).toEqual([1, 1, 0]);
    await (await router.fetch(`${down.url}/completions`, { method: 'POST', body: '{}' })).text();
    expect(down.paths).toHaveLength(1); // set aside: not tried again during its cooldown
    now += 1001;
    await (await router.fetch(`${down.url}/completions`, { method: 'POST', body: '{}' })).text();
    expect(down.paths).toHaveLength(2); // back after the cooldown (and failed over again)
    // every replica failing: the last answer is returned for the caller's retries to handle
    const alone = new ReplicaRouter([down.url]);
    expect((await alone.fetch(`${down.url}/completions`, { method: 'POST', body: '{}' })).status).toBe(503);
  });
});
