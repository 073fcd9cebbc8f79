import { logger } from '@libp2p/logger'
import type { AbortOptions, Startable } from '@libp2p/interface'

const log = logger('snapmesh:metadata:republish')

/** Remote DHT peers drop a record this long after it was put. */
export const DHT_RECORD_TTL_MS = 48 * 3600 * 1000

/** The value to put, or a loader for it (undefined: the value is gone, stop republishing it). */
export type RepublishValue = Uint8Array | (() => Promise<Uint8Array | undefined>)

export interface RepublisherComponents {
  /** stores a value in the DHT (the agent's dht.put, drained) */
  put: (key: Uint8Array, value: Uint8Array, options?: AbortOptions) => Promise<void>
  /** ms since the epoch */
  clock?: () => number
}

export interface RepublisherInit {
  /** time between two puts of one key; must be below the DHT's 48 h expiry. Default 12 h. */
  intervalMs?: number
  /** time before retrying a put that failed. Default 5 min. */
  retryMs?: number
  /** how often start()'s timer calls tick(). Default 1 min. */
  checkMs?: number
}

interface Entry {
  key: Uint8Array
  value: RepublishValue
  /** when the value was last stored, or undefined if never */
  lastPut?: number
  /** when to put it next */
  due: number
}

export interface RepublishReport {
  put: number
  failed: number
  dropped: number
}

const keyId = (key: Uint8Array): string => Buffer.from(key).toString('hex')

/**
 * Keeps DHT values alive: remembers each key's value and when it was last put, and re-puts it
 * every `intervalMs` (a failed put is retried after `retryMs`). The scheduling is driven by
 * `tick()` and an injected clock; `start()` adds a timer that calls it.
 */
export class Republisher implements Startable {
  private readonly put: RepublisherComponents['put']
  private readonly clock: () => number
  private readonly intervalMs: number
  private readonly retryMs: number
  private readonly checkMs: number
  private readonly entries = new Map<string, Entry>()
  private timer?: ReturnType<typeof setInterval>
  private running?: Promise<RepublishReport>
  private controller = new AbortController()

  constructor (components: RepublisherComponents, init: RepublisherInit = {}) {
    this.put = components.put
    this.clock = components.clock ?? Date.now
    this.intervalMs = init.intervalMs ?? 12 * 3600 * 1000
    this.retryMs = init.retryMs ?? 5 * 60 * 1000
    this.checkMs = init.checkMs ?? 60 * 1000
    if (!(this.intervalMs > 0 && this.intervalMs < DHT_RECORD_TTL_MS)) throw new RangeError(`republish intervalMs must be above 0 and below the DHT expiry of ${DHT_RECORD_TTL_MS} ms, got ${this.intervalMs}`)
    if (!(this.retryMs > 0)) throw new RangeError(`republish retryMs must be above 0, got ${this.retryMs}`)
    if (!(this.checkMs > 0)) throw new RangeError(`republish checkMs must be above 0, got ${this.checkMs}`)
  }

  /**
   * Remembers a key's value without putting it. `lastPut` is when it was last stored; without it
   * the key is due at once. A key tracked again takes the new value and timing.
   */
  track (key: Uint8Array, value: RepublishValue, lastPut?: number): void {
    const e: Entry = { key, value, due: lastPut == null ? this.clock() : lastPut + this.intervalMs }
    if (lastPut != null) e.lastPut = lastPut
    this.entries.set(keyId(key), e)
  }

  /** Stops republishing a key. */
  forget (key: Uint8Array): void {
    this.entries.delete(keyId(key))
  }

  has (key: Uint8Array): boolean {
    return this.entries.has(keyId(key))
  }

  get size (): number {
    return this.entries.size
  }

  /** Puts a value now and keeps republishing it. A failed put is retried by tick() and rethrown here. */
  async publish (key: Uint8Array, value: RepublishValue, options: AbortOptions = {}): Promise<void> {
    const e: Entry = { key, value, due: this.clock() }
    this.entries.set(keyId(key), e)
    await this.putEntry(e, options)
  }

  /** The keys due for a put at `now`, earliest first. */
  due (now = this.clock()): Uint8Array[] {
    return [...this.entries.values()].filter(e => e.due <= now).sort((a, b) => a.due - b.due).map(e => e.key)
  }

  /** When the next put is due, or undefined when nothing is tracked. */
  nextDue (): number | undefined {
    let next: number | undefined
    for (const e of this.entries.values()) next = next == null ? e.due : Math.min(next, e.due)
    return next
  }

  /** When a key was last stored successfully, if ever. */
  lastPut (key: Uint8Array): number | undefined {
    return this.entries.get(keyId(key))?.lastPut
  }

  /** Puts every value that is due, one at a time. Failures are counted and retried later, never thrown. */
  async tick (options: AbortOptions = {}): Promise<RepublishReport> {
    if (this.running != null) return this.running
    const run = async (): Promise<RepublishReport> => {
      const report: RepublishReport = { put: 0, failed: 0, dropped: 0 }
      for (const key of this.due()) {
        if (options.signal?.aborted === true) break
        const e = this.entries.get(keyId(key))
        if (e == null) continue
        try {
          const ok = await this.putEntry(e, options)
          if (ok) report.put++
          else report.dropped++
        } catch {
          report.failed++
        }
      }
      return report
    }
    this.running = run()
    try {
      return await this.running
    } finally {
      this.running = undefined
    }
  }

  /** returns false when a loader reported the value gone */
  private async putEntry (e: Entry, options: AbortOptions): Promise<boolean> {
    const started = this.clock()
    try {
      const value = typeof e.value === 'function' ? await e.value() : e.value
      if (value == null) {
        if (this.entries.get(keyId(e.key)) === e) this.entries.delete(keyId(e.key))
        return false
      }
      await this.put(e.key, value, options)
      e.lastPut = started
      e.due = started + this.intervalMs
      return true
    } catch (err: any) {
      e.due = this.clock() + this.retryMs
      log('put of %s failed, retrying in %d ms: %s', new TextDecoder().decode(e.key), this.retryMs, err?.message)
      throw err
    }
  }

  async start (): Promise<void> {
    if (this.timer != null) return
    this.controller = new AbortController()
    this.timer = setInterval(() => {
      this.tick({ signal: this.controller.signal }).catch(() => {})
    }, this.checkMs)
    this.timer.unref?.()
  }

  async stop (): Promise<void> {
    if (this.timer != null) clearInterval(this.timer)
    this.timer = undefined
    this.controller.abort()
    await this.running?.catch(() => {})
  }
}
