import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatSeconds, Progress } from './progress.js';

function stream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const sink = new PassThrough();
  let written = '';
  sink.on('data', (chunk: Buffer) => (written += chunk.toString('utf8')));
  Object.assign(sink, { isTTY });
  return { stream: sink as unknown as NodeJS.WriteStream, text: () => written };
}

describe('Progress', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-11-26T12:00:00Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('prints plain lines with rate and ETA at most every 5 s when stderr is not a terminal', async () => {
    const out = stream(false);
    const progress = new Progress('perplexity', 100, 'rows', out.stream);
    vi.advanceTimersByTime(1000);
    progress.tick(10); // within 5 s of the first line: nothing
    vi.advanceTimersByTime(9000);
    progress.tick(40); // 50 rows in 10 s: 5/s, 50 left: ETA 10 s
    vi.advanceTimersByTime(10_000);
    progress.tick(50);
    progress.finish();
    await vi.runAllTimersAsync();
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toEqual([
      'perplexity: 0% 0/100 rows 0.00/s ETA --',
      'perplexity: 50% 50/100 rows 5.00/s ETA 10s',
      'perplexity: 100% 100/100 rows 5.00/s ETA 0s', // finish() does not repeat an unchanged line
    ]);
    expect(out.text()).not.toContain('\r');
  });

  it('redraws one bar on a terminal and counts failures', async () => {
    const out = stream(true);
    const progress = new Progress('execute', 4, 'candidates', out.stream);
    vi.advanceTimersByTime(2000);
    progress.tick(1);
    progress.tick(1, true);
    progress.finish();
    await vi.runAllTimersAsync();
    const frames = out.text().split('\r').filter(Boolean);
    expect(frames[0]).toBe('execute [........................] 0% 0/4 candidates 0.00/s ETA --\x1b[K');
    expect(frames.at(-1)).toBe('execute [############............] 50% 2/4 candidates 1.00/s ETA 2s 1 failed\x1b[K\n');
  });

  it('measures the rate of this run only when resuming', async () => {
    const out = stream(false);
    const progress = new Progress('generate', 200, 'samples', out.stream, 150);
    vi.advanceTimersByTime(10_000);
    progress.tick(25);
    await vi.runAllTimersAsync();
    expect(out.text().trimEnd().split('\n').at(-1)).toBe('generate: 87% 175/200 samples 2.50/s ETA 10s');
  });

  it('formats durations', () => {
    expect(formatSeconds(Number.NaN)).toBe('--');
    expect(formatSeconds(42.4)).toBe('42s');
    expect(formatSeconds(125)).toBe('2m05s');
    expect(formatSeconds(3 * 3600 + 7 * 60)).toBe('3h07m');
  });
});
