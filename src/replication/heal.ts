// Replacing quarantined blocks. When any read finds a stored block whose bytes no longer hash to its
// CID, the store moves the file to quarantine/ and tells the healer, which fetches a verified copy
// from another holder and stores it again, a few blocks at a time so that a damaged disk does not
// set off a flood of requests. A block nobody can supply now is tried again later, a bounded number
// of times.
import { logger } from '@libp2p/logger'
import PQueue from 'p-queue'
import { verifyBlock, type Blocks } from '../store/index.js'
import type { AbortOptions, Startable } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

const log = logger('snapmesh:replication:heal')

export interface BlockHealerComponents {
  blocks: Pick<Blocks, 'put' | 'has'>
  /** a copy of the block from another holder, checked against its CID */
  fetch: (cid: CID, options?: AbortOptions) => Promise<Uint8Array>
}

export interface BlockHealerInit {
  /** blocks fetched at once (default 2) */
  concurrency?: number
  /** blocks waiting at most; more are dropped and counted as failed (default 10,000) */
  maxPending?: number
  /** waits before the next tries of a block no holder could supply (default 5 s, 30 s, 2 min) */
  retryDelaysMs?: number[]
}

export interface HealerStats {
  /** corrupt blocks reported by reads since start */
  quarantined: number
  /** of those, replaced with a verified copy */
  replaced: number
  /** given up on: no holder had an intact copy after every try, or the queue was full */
  failed: number
  /** waiting or being fetched */
  pending: number
}

export class BlockHealer implements Startable {
  private readonly c: BlockHealerComponents
  private readonly queue: PQueue
  private readonly maxPending: number
  private readonly retryDelaysMs: number[]
  /** CIDs waiting, being fetched or waiting for a retry, so a block is healed once at a time */
  private readonly pending = new Set<string>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private controller = new AbortController()
  private started = false
  private readonly counts = { quarantined: 0, replaced: 0, failed: 0 }

  constructor (components: BlockHealerComponents, init: BlockHealerInit = {}) {
    this.c = components
    this.queue = new PQueue({ concurrency: init.concurrency ?? 2 })
    this.maxPending = init.maxPending ?? 10_000
    this.retryDelaysMs = init.retryDelaysMs ?? [5_000, 30_000, 120_000]
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    this.controller = new AbortController()
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.controller.abort()
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.queue.clear()
    await this.queue.onIdle()
    this.pending.clear()
  }

  stats (): HealerStats {
    return { ...this.counts, pending: this.pending.size }
  }

  /** a read found `cid` corrupt and moved it aside: get a good copy back */
  corrupt (cid: CID): void {
    this.counts.quarantined++
    const key = cid.toString()
    if (!this.started || this.pending.has(key)) return
    if (this.pending.size >= this.maxPending) {
      this.counts.failed++
      log.error('not replacing %s: %d blocks are waiting already', key, this.pending.size)
      return
    }
    this.pending.add(key)
    this.schedule(cid, 0)
  }

  /** resolves once nothing is waiting or being fetched (retries still to come do not count) */
  async onIdle (): Promise<void> {
    await this.queue.onIdle()
  }

  private schedule (cid: CID, attempt: number): void {
    void this.queue.add(async () => { await this.heal(cid, attempt) }).catch(() => {})
  }

  private async heal (cid: CID, attempt: number): Promise<void> {
    const key = cid.toString()
    const signal = this.controller.signal
    if (signal.aborted) return
    try {
      // another write (replication, a repair) may have put a good copy back meanwhile
      if (!(await this.c.blocks.has(cid, { signal }))) {
        const bytes = await this.c.fetch(cid, { signal })
        verifyBlock(cid, bytes)
        await this.c.blocks.put(cid, bytes, { signal })
      }
      this.counts.replaced++
      this.pending.delete(key)
      log('replaced quarantined block %s', key)
    } catch (err: any) {
      if (signal.aborted) return
      const delay = this.retryDelaysMs[attempt]
      if (delay == null) {
        this.counts.failed++
        this.pending.delete(key)
        log.error('could not replace quarantined block %s after %d tries: %s', key, attempt + 1, err.message)
        return
      }
      log('replacing quarantined block %s failed (try %d), again in %d ms: %s', key, attempt + 1, delay, err.message)
      const t = setTimeout(() => {
        this.timers.delete(t)
        if (this.started) this.schedule(cid, attempt + 1)
      }, delay)
      t.unref()
      this.timers.add(t)
    }
  }
}
