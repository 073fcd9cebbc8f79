// This agent's own part of a snapshot: the apps' cut, then the capture of every configured source
// (and the apps' part) into the block store, one capture at a time, returning the result body the
// protocol signs.
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { capture, type SourceSpec } from '../capture/index.js'
import { LAST_ROOT, type AgentState } from '../state/index.js'
import { anySignal } from '../util/index.js'
import type { Marker, ResultBody } from '../wire/index.js'
import type { Blocks } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('snapmesh:snapshot:local')

export interface LocalCaptureComponents {
  blocks: Blocks
  state: Pick<AgentState, 'get' | 'set'>
  /** the local apps: their cut is taken on the marker, and their part is a folder to capture */
  apps: {
    cut: (marker: Marker) => void
    wait: (id: string, options?: AbortOptions) => Promise<{ dir?: string }>
    release: (id: string) => Promise<void>
  }
  /**
   * runs one task at a time: captures and prunes never overlap. Higher `priority` runs first among
   * those waiting (barrier captures, whose hosts are frozen meanwhile)
   */
  serial: { add: <T>(fn: () => Promise<T>, options?: { priority?: number }) => Promise<T> }
  /** the protocol's Lamport clock, for the result */
  lamport: () => number
  /** called once a part is stored (replication starts from here) */
  onCaptured?: (id: string, root: CID) => void
  clock?: () => number
}

export interface LocalCaptureInit {
  peerId: string
  name: string
  sources: SourceSpec[]
  /** the source name the apps' part is stored under */
  appsSource: string
  /**
   * captures started by one initiator that may wait at once (default 16): past that, its markers
   * get an error result at once, so no member can queue up unbounded work here
   */
  maxWaitingPerInitiator?: number
}

export class LocalCapture {
  private readonly c: LocalCaptureComponents
  private readonly init: LocalCaptureInit
  private readonly clock: () => number
  private readonly controller = new AbortController()
  /** captures waiting or running, per initiator */
  private readonly waiting = new Map<string, number>()

  constructor (components: LocalCaptureComponents, init: LocalCaptureInit) {
    this.c = components
    this.init = init
    this.clock = components.clock ?? Date.now
  }

  /** aborts the capture running and those waiting */
  stop (): void {
    this.controller.abort()
  }

  async capture (marker: Marker, options: AbortOptions = {}): Promise<ResultBody> {
    const limit = this.init.maxWaitingPerInitiator ?? 16
    const queued = this.waiting.get(marker.initiator) ?? 0
    if (queued >= limit) {
      return { id: marker.id, peerId: this.init.peerId, name: this.init.name, lamport: this.c.lamport(), time: this.clock(), status: 'error', error: `refused: ${queued} captures started by ${marker.initiator} are already waiting here (at most ${limit})` }
    }
    this.waiting.set(marker.initiator, queued + 1)
    try {
      return await this.queue(marker, options)
    } finally {
      const n = (this.waiting.get(marker.initiator) ?? 1) - 1
      if (n > 0) this.waiting.set(marker.initiator, n)
      else this.waiting.delete(marker.initiator)
    }
  }

  private async queue (marker: Marker, options: AbortOptions): Promise<ResultBody> {
    const signal = anySignal(this.controller.signal, options.signal)
    // the apps' cut is taken now, before this capture waits for the ones ahead of it; its part
    // (app states, messages in flight) is captured as one more source once its channels are complete
    this.c.apps.cut(marker)
    const appsPart = this.c.apps.wait(marker.id, { signal })
    // not in the queue: a snapshot whose channels are still completing holds no other capture back
    await appsPart.catch(() => {})
    const base = { id: marker.id, peerId: this.init.peerId, name: this.init.name }
    const failed = (error: string): ResultBody => ({ ...base, lamport: this.c.lamport(), time: this.clock(), status: 'error', error })
    const run = async (): Promise<ResultBody> => {
      const started = this.clock()
      try {
        signal.throwIfAborted()
        const prev = await this.c.state.get(LAST_ROOT)
        const apps = await appsPart
        const result = await capture({ blocks: this.c.blocks }, {
          peerId: this.init.peerId,
          name: this.init.name,
          sources: apps.dir != null ? [...this.init.sources, { name: this.init.appsSource, path: apps.dir, fresh: true }] : this.init.sources,
          // barrier mode ran the pre hooks before voting and runs the post hooks after the capture
          skipHooks: marker.consistency === 'barrier',
          previous: prev != null ? CID.parse(prev) : undefined
        }, { signal })
        await this.c.state.set(LAST_ROOT, result.root.toString())
        this.c.onCaptured?.(marker.id, result.root)
        return { ...base, lamport: this.c.lamport(), time: this.clock(), status: 'ok', root: result.root, stats: result.stats, problems: result.problems }
      } catch (err: any) {
        log.error('capture for %s failed after %d ms: %s', marker.id, this.clock() - started, err.message)
        return failed(String(err.message))
      } finally {
        await this.c.apps.release(marker.id).catch(() => {})
      }
    }
    if (marker.consistency !== 'barrier') return this.c.serial.add(run)
    // a barrier capture goes ahead of every capture and prune waiting, and gives up waiting for
    // the one running when its freeze bound (the signal) ends: the host is never frozen for longer
    const queued = this.c.serial.add(run, { priority: 1 })
    const waited = this.clock()
    return Promise.race([queued, new Promise<ResultBody>(resolve => {
      const give = (): void => { resolve(failed(`waited ${this.clock() - waited} ms behind another capture or prune until the freeze bound ended`)) }
      if (signal.aborted) give()
      else signal.addEventListener('abort', give, { once: true })
    })])
  }
}
