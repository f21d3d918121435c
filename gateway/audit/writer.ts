import type { AuditEntry, PendingEntry } from './entry.ts';
import type { AuditStore } from './store.ts';

export interface WriterHooks {
  /** Called after each committed batch (metrics, checkpoints). */
  onCommit?: (batch: AuditEntry[], durationMs: number) => void;
  onError?: (error: unknown, batchSize: number) => void;
}

interface Waiter { pending: PendingEntry; resolve: (e: AuditEntry) => void; reject: (e: unknown) => void }

/**
 * Group commit: entries queue while a batch is being committed and go together in the next
 * transaction, so the cost of one durable commit is shared by every request that arrived during
 * the previous one. Each caller's promise resolves only when its own entry is committed.
 */
export class AuditWriter {
  readonly #store: AuditStore;
  readonly #maxBatch: number;
  readonly #hooks: WriterHooks;
  #queue: Waiter[] = [];
  #running: Promise<void> | null = null;

  constructor(store: AuditStore, options: { maxBatch: number } & WriterHooks) {
    this.#store = store;
    this.#maxBatch = options.maxBatch;
    this.#hooks = options;
  }

  /** Queues an entry; resolves with the committed entry, rejects when the store could not commit. */
  append(pending: PendingEntry): Promise<AuditEntry> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ pending, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running) return;
    // setImmediate lets every request handled in this turn of the event loop join the batch.
    this.#running = new Promise<void>((r) => setImmediate(r))
      .then(() => this.#drain())
      .finally(() => {
        this.#running = null;
        if (this.#queue.length) this.#schedule();
      });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      const started = performance.now();
      try {
        const committed = await this.#store.appendBatch(batch.map((w) => w.pending));
        this.#hooks.onCommit?.(committed, performance.now() - started);
        batch.forEach((w, i) => w.resolve(committed[i]!));
      } catch (e) {
        this.#hooks.onError?.(e, batch.length);
        batch.forEach((w) => w.reject(e));
      }
    }
  }

  /** Waits until every queued entry is committed or refused. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }
}
