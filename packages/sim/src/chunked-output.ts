/** What a connection writes, optionally cut into pieces (whole, split, byte-wise at random) to test the reader. */
import type * as net from 'node:net';
import type { Chunking } from './call-script.js';
import { prng } from './util.js';

export class Output {
  private queue: Buffer[] = [];
  private pumping = false;
  private ending: (() => void) | null = null;
  private readonly rnd: () => number;
  bytes = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly mode: Chunking,
    seed: number,
  ) {
    this.rnd = prng(seed);
  }

  write(s: string): void {
    if (this.socket.destroyed || this.ending) return;
    const b = Buffer.from(s, 'utf8');
    this.bytes += b.length;
    if (this.mode === 'whole') {
      this.socket.write(b);
      return;
    }
    if (this.mode === 'split') {
      // cut every logical write once at a random point (often inside the header block)
      const cut = 1 + Math.floor(this.rnd() * Math.max(1, b.length - 1));
      this.queue.push(b.subarray(0, cut));
      if (cut < b.length) this.queue.push(b.subarray(cut));
    } else {
      let off = 0;
      while (off < b.length) {
        const r = this.rnd();
        const n = r < 0.3 ? 1 : 1 + Math.floor(this.rnd() * 96);
        this.queue.push(b.subarray(off, Math.min(b.length, off + n)));
        off += n;
      }
    }
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const step = (): void => {
      const chunk = this.queue.shift();
      if (!chunk || this.socket.destroyed) {
        this.pumping = false;
        const e = this.ending;
        if (e && this.queue.length === 0) e();
        return;
      }
      this.socket.write(chunk);
      setImmediate(step);
    };
    setImmediate(step);
  }

  /** Flush pending chunks, then end the TCP connection (FreeSWITCH closes after the disconnect notice). */
  end(): void {
    if (this.ending) return;
    const finish = (): void => {
      if (!this.socket.destroyed) this.socket.end();
      setTimeout(() => {
        if (!this.socket.destroyed) this.socket.destroy();
      }, 200).unref();
    };
    this.ending = finish;
    if (!this.pumping || this.queue.length === 0) finish();
  }
}
