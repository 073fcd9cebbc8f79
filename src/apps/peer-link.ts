// Reliable sending of app frames to one peer: frames wait in a queue, go out on one stream with a
// bounded number unacknowledged, and are sent again (on a new stream) when the stream fails before
// they were acknowledged, or later when the receiver refused them for now. So a frame may arrive
// more than once and in any order: the cut machine deduplicates and does not need FIFO.
import { logger } from '@libp2p/logger'
import { lpStream } from 'it-length-prefixed-stream'
import { decodeVerdict, encodeFrame } from './wire.js'
import type { Frame, Verdict } from './cut.js'
import type { AbortOptions, PeerId, Stream } from '@libp2p/interface'
import { timeoutSignal } from '../util/index.js'

const log = logger('snapmesh:apps:link')

export interface LinkComponents {
  dial: (options: AbortOptions) => Promise<Stream>
}

export interface LinkInit {
  peer: string
  /** frames sent but not acknowledged at once on the stream */
  window?: number
  /** the longest wait before a frame refused for now, or a failed stream, is tried again */
  maxBackoffMs?: number
  /** time allowed for a dial and for each acknowledgement */
  timeoutMs?: number
  /** largest answer frame */
  maxDataLength: number
  /** a frame the receiver refused for good */
  onRefused: (frame: Frame, error: string) => void
}

interface Item { frame: Frame, attempts: number, notBefore: number }

/** what a link needs from a receiver, for frames to this agent itself */
export type LocalReceiver = (frame: Frame) => Verdict

export interface Link {
  readonly size: number
  enqueue: (frame: Frame) => void
  stop: () => void
}

function backoff (attempts: number, max: number): number {
  return Math.min(max, 200 * 2 ** Math.min(attempts, 10))
}

/** frames to another agent over `/snapmesh/app/1.0.0` */
export class PeerLink implements Link {
  private readonly c: LinkComponents
  private readonly init: Required<Omit<LinkInit, 'onRefused'>> & Pick<LinkInit, 'onRefused'>
  private readonly queue: Item[] = []
  private inflight = 0
  private running = false
  private readonly stopped = new AbortController()
  private wake?: () => void
  private timer?: ReturnType<typeof setTimeout>

  constructor (components: LinkComponents, init: LinkInit) {
    this.c = components
    this.init = { window: 256, maxBackoffMs: 5000, timeoutMs: 15_000, ...init }
  }

  get size (): number {
    return this.queue.length + this.inflight
  }

  enqueue (frame: Frame): void {
    this.queue.push({ frame, attempts: 0, notBefore: 0 })
    this.poke()
  }

  stop (): void {
    this.stopped.abort(new Error('the app hub stopped'))
    clearTimeout(this.timer)
    this.poke()
  }

  private poke (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
    if (!this.running && !this.stopped.signal.aborted) {
      this.running = true
      this.run().catch(err => { log.error('link to %s: %s', this.init.peer, err.message) }).finally(() => {
        this.running = false
        if (this.queue.length > 0 && !this.stopped.signal.aborted) this.schedule()
      })
    }
  }

  private schedule (): void {
    clearTimeout(this.timer)
    const next = Math.min(...this.queue.map(i => i.notBefore))
    this.timer = setTimeout(() => { this.poke() }, Math.max(0, next - Date.now()))
    this.timer.unref?.()
  }

  /** one stream at a time, while there is something to send */
  private async run (): Promise<void> {
    let failures = 0
    while (!this.stopped.signal.aborted && this.queue.some(i => i.notBefore <= Date.now())) {
      try {
        await this.session()
        failures = 0
      } catch (err: any) {
        if (this.stopped.signal.aborted) return
        failures++
        const wait = backoff(failures, this.init.maxBackoffMs)
        log('stream to %s failed (%s); again in %d ms', this.init.peer, err.message, wait)
        await new Promise(resolve => setTimeout(resolve, wait))
      }
    }
  }

  private async session (): Promise<void> {
    const step = (): AbortSignal => AbortSignal.any([this.stopped.signal, timeoutSignal(this.init.timeoutMs)])
    const stream = await this.c.dial({ signal: step() })
    const lp = lpStream(stream, { maxDataLength: this.init.maxDataLength })
    const sent = new Map<number, Item>()
    let k = 0
    let closing = false
    let failed: Error | undefined
    const wakeUp = (): void => {
      const w = this.wake
      this.wake = undefined
      w?.()
    }
    const reader = (async () => {
      while (true) {
        let bytes
        try {
          bytes = await lp.read({ signal: step() })
        } catch (err) {
          if (closing && sent.size === 0) return
          throw err
        }
        const { k: ack, verdict } = decodeVerdict(bytes.subarray())
        const item = sent.get(ack)
        if (item == null) throw new Error(`answer for frame ${ack}, which is not outstanding`)
        sent.delete(ack)
        this.inflight--
        if (!verdict.ok) {
          if (verdict.retry) {
            item.attempts++
            item.notBefore = Date.now() + backoff(item.attempts, this.init.maxBackoffMs)
            this.queue.push(item)
            this.schedule()
          } else {
            log.error('%s refused an app frame: %s', this.init.peer, verdict.error)
            this.init.onRefused(item.frame, verdict.error)
          }
        }
        wakeUp()
      }
    })().catch((err: Error) => { failed = err; wakeUp() })
    try {
      while (failed == null && !this.stopped.signal.aborted) {
        const now = Date.now()
        const i = this.queue.findIndex(it => it.notBefore <= now)
        if (i >= 0 && sent.size < this.init.window) {
          const [item] = this.queue.splice(i, 1)
          const n = k++
          sent.set(n, item)
          this.inflight++
          await lp.write(encodeFrame(n, item.frame), { signal: step() })
          continue
        }
        // nothing to send: keep the stream a little for what comes next, then end it
        const idle = i < 0 && sent.size === 0
        let timer: ReturnType<typeof setTimeout> | undefined
        const woken = await new Promise<boolean>(resolve => {
          this.wake = () => { resolve(true) }
          if (idle) timer = setTimeout(() => { resolve(false) }, 5000)
        })
        clearTimeout(timer)
        this.wake = undefined
        if (!woken && sent.size === 0 && !this.queue.some(it => it.notBefore <= Date.now())) break
      }
      if (failed != null) throw failed
      if (this.stopped.signal.aborted) throw new Error('the app hub stopped')
      closing = true
      await stream.closeWrite({ signal: step() })
      await reader
      if (failed != null) throw failed
      await stream.close({ signal: step() })
    } catch (err: any) {
      stream.abort(err)
      for (const item of sent.values()) this.queue.unshift(item)
      this.inflight -= sent.size
      sent.clear()
      throw err
    }
  }
}

/** frames between this agent's own apps: handed to the receiver on the next turn */
export class LocalLink implements Link {
  private readonly receive: LocalReceiver
  private readonly maxBackoffMs: number
  private pending = 0
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private stopped = false

  constructor (receive: LocalReceiver, init: { maxBackoffMs?: number } = {}) {
    this.receive = receive
    this.maxBackoffMs = init.maxBackoffMs ?? 5000
  }

  get size (): number {
    return this.pending
  }

  enqueue (frame: Frame, attempts = 0): void {
    this.pending++
    const t = setTimeout(() => {
      this.timers.delete(t)
      this.pending--
      if (this.stopped) return
      const v = this.receive(frame)
      if (!v.ok && v.retry) this.enqueue(frame, attempts + 1)
    }, attempts === 0 ? 0 : backoff(attempts, this.maxBackoffMs))
    this.timers.add(t)
  }

  stop (): void {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }
}

export type { PeerId }
