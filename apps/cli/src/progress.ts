/**
 * A progress bar on stderr. On a terminal it redraws one line; elsewhere (CI logs, pipes) it prints
 * a line every 10 % so logs stay short. stdout stays clean for --json output.
 */
export class ProgressBar {
  private last = -10;
  private current = 0;
  private readonly tty: boolean;
  private readonly started = Date.now();

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
    /** Units done before this bar started (a resumed job): the ETA counts only the work seen here. */
    private readonly startAt = 0,
  ) {
    this.tty = Boolean(stream.isTTY);
    this.current = startAt;
  }

  update(done: number, info = ''): void {
    this.current = done;
    if (!this.enabled || this.total <= 0) return;
    const frac = Math.min(1, Math.max(0, done / this.total));
    const pct = Math.floor(frac * 100);
    const elapsed = (Date.now() - this.started) / 1000;
    const seen = done - this.startAt;
    const eta = seen > 0 ? (elapsed / seen) * (this.total - done) : 0;
    const width = 28;
    const fill = Math.round(frac * width);
    const bar = `${'█'.repeat(fill)}${'░'.repeat(width - fill)}`;
    const text = `${this.label} ${bar} ${String(pct).padStart(3)}% ${done}/${this.total} ${info} eta ${eta.toFixed(0)}s`;
    if (this.tty) {
      this.stream.write(`\r${text.padEnd(100)}`);
    } else if (pct >= this.last + 10 || (done === this.total && this.last < 100)) {
      this.last = done === this.total ? 100 : pct - (pct % 10);
      this.stream.write(`${text}\n`);
    }
  }

  done(info = ''): void {
    this.update(this.total, info);
    if (this.enabled && this.tty) this.stream.write('\n');
  }

  /** Ends the bar where it is (a job stopped early): no jump to 100 %. */
  stop(info = ''): void {
    if (!this.enabled || this.total <= 0) return;
    const line = `${this.label} stopped at ${this.current}/${this.total}${info ? ` ${info}` : ''}`;
    this.stream.write(this.tty ? `\r${line.padEnd(100)}\n` : `${line}\n`);
  }
}
