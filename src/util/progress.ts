import { logPrefix } from './log.js';

/**
 * Progress on stderr with rate and ETA: a redrawn bar on a terminal, plain lines (at most every few seconds)
 * otherwise. Never writes to stdout.
 */
export class Progress {
  private done = 0;
  private readonly startedAt = Date.now();
  private lastPlainAt = 0;
  private lastPlainDone = -1;
  private failures = 0;

  private readonly label: string;

  constructor(
    label: string,
    private readonly total: number,
    private readonly unit: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    alreadyDone = 0,
  ) {
    this.label = `${logPrefix()}${label}`;
    this.done = alreadyDone;
    this.initial = alreadyDone;
    this.render(true);
  }

  private readonly initial: number;

  tick(count = 1, failed = false): void {
    this.done += count;
    if (failed) this.failures += count;
    this.render(false);
  }

  finish(): void {
    this.render(true);
    if (this.stream.isTTY) this.stream.write('\n');
  }

  private render(force: boolean): void {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const rate = elapsed > 0 ? (this.done - this.initial) / elapsed : 0;
    const remaining = this.total - this.done;
    const eta = rate > 0 ? remaining / rate : Number.NaN;
    const percent = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    const failures = this.failures > 0 ? ` ${this.failures} failed` : '';
    const stats = `${this.done}/${this.total} ${this.unit} ${rate.toFixed(rate < 10 ? 2 : 0)}/s ETA ${formatSeconds(eta)}${failures}`;
    if (this.stream.isTTY) {
      const width = 24;
      const filled = Math.round((width * percent) / 100);
      this.stream.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${percent}% ${stats}\x1b[K`);
      return;
    }
    const now = Date.now();
    if (this.done === this.lastPlainDone) return;
    if (!force && now - this.lastPlainAt < 5000 && this.done < this.total) return;
    this.lastPlainAt = now;
    this.lastPlainDone = this.done;
    this.stream.write(`${this.label}: ${percent}% ${stats}\n`);
  }
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
