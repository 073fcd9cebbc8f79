// When an owner re-replicates, and when a member takes over a gone owner's part. Every
// `checkSeconds` this agent looks at the recent snapshots: a member not connected for longer than
// the grace period is presumed gone. Each owner pushes again those of its own parts whose members
// changed (one gone, or one joined), so every block is at the holders placement gives over the
// members there are now. The part of a gone owner is taken over by one live member (takerFor),
// which gathers the part from whoever holds it and pushes it to the holders placement gives
// without the owner.
import { logger } from '@libp2p/logger'
import { replicatedKey, takenOverKey, type AgentState } from '../state/index.js'
import { every } from '../util/index.js'
import { placementFor, takeOver, takerFor } from './takeover.js'
import type { HolderFinder } from './holders.js'
import type { Replicator } from './index.js'
import type { CopyReporter } from './reports.js'
import type { Membership } from '../membership/index.js'
import type { SnapshotRecord } from '../metadata/index.js'
import type { Blocks } from '../store/index.js'
import type { Startable } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

const log = logger('snapmesh:replication:repair')

export interface RepairComponents {
  membership: Pick<Membership, 'self' | 'connected' | 'presumedGone'>
  /** the newest snapshots first */
  records: () => Promise<SnapshotRecord[]>
  state: Pick<AgentState, 'get' | 'set'>
  replicator: Pick<Replicator, 'replicate' | 'offer'>
  blocks: Pick<Blocks, 'has' | 'get' | 'put'>
  holders: Pick<HolderFinder, 'forOwner'>
  reporter: Pick<CopyReporter, 'report'>
  clock?: () => number
}

export interface RepairInit {
  copies: number
  concurrency: number
  graceMs: number
  /** how often to look (0: never on its own; `check()` still works) */
  checkMs: number
  /** how many of the newest snapshots are looked at (default 50) */
  recent?: number
}

export class Repairer implements Startable {
  private readonly c: RepairComponents
  private readonly init: RepairInit
  private readonly clock: () => number
  private controller = new AbortController()

  constructor (components: RepairComponents, init: RepairInit) {
    this.c = components
    this.init = init
    this.clock = components.clock ?? Date.now
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    if (this.init.copies > 1 && this.init.checkMs > 0) {
      every(this.init.checkMs, this.controller.signal, async () => { await this.check() }, (err) => { log.error('repair check failed: %s', err.message) })
    }
  }

  async stop (): Promise<void> {
    this.controller.abort()
  }

  private get self (): string {
    return this.c.membership.self
  }

  /** pushes this host's part of a snapshot to its holders, then reports the copies it counted; never throws */
  async replicateOwn (id: string, root: CID): Promise<void> {
    if (this.init.copies <= 1) return
    try {
      const members = [this.self, ...await this.c.membership.connected()]
      const report = await this.c.replicator.replicate(this.self, root, members, { signal: this.controller.signal })
      await this.c.state.set(replicatedKey(id), JSON.stringify({ root: root.toString(), members }))
      if (report.failures.length > 0) log('replication of %s incomplete: %s', id.slice(0, 8), report.failures.join('; '))
      await this.c.reporter.report(id, this.self, root, report)
    } catch (err: any) {
      log.error('replication of %s failed: %s', id.slice(0, 8), err.message)
    }
  }

  /** one look at the recent snapshots */
  async check (): Promise<void> {
    const now = this.clock()
    const live = new Set(await this.c.membership.connected())
    const gone = (peer: string): boolean => this.c.membership.presumedGone(peer, live, this.init.graceMs, now)
    const members = [this.self, ...live].sort()
    for (const record of (await this.c.records()).slice(0, this.init.recent ?? 50)) {
      if (this.controller.signal.aborted) return
      for (const part of record.results) {
        if (part.status !== 'ok' || part.root == null) continue
        if (part.peerId === this.self) {
          const meta = await this.c.state.get(replicatedKey(record.id))
          if (meta == null) continue
          const { members: before } = JSON.parse(meta) as { members: string[] }
          const had = new Set(before)
          // a member gone, or one that joined since: placement moved some copies
          const joined = [...live].filter(p => !had.has(p))
          if (!before.some(gone) && joined.length === 0) continue
          log('re-replicating %s: %s presumed gone, %s joined', record.id.slice(0, 8), before.filter(gone).join(', ') || 'none', joined.join(', ') || 'none')
          await this.replicateOwn(record.id, part.root)
        } else if (gone(part.peerId) && takerFor(part.root, members) === this.self) {
          await this.takeOverPart(record, part.peerId, part.name, part.root, members)
        }
      }
    }
  }

  private async takeOverPart (record: SnapshotRecord, owner: string, name: string, root: CID, members: string[]): Promise<void> {
    const key = takenOverKey(record.id, owner)
    if (await this.c.state.get(key) === JSON.stringify(members)) return
    log('taking over the part of %s in %s', name, record.id.slice(0, 8))
    try {
      const { getter } = await this.c.holders.forOwner(owner)
      const counted = await takeOver({
        blocks: this.c.blocks,
        getter,
        offer: async (holder, cids, options) => this.c.replicator.offer(holder, cids, options)
      }, {
        root,
        self: this.self,
        placement: placementFor(owner, members, this.init.copies),
        concurrency: this.init.concurrency
      }, { signal: this.controller.signal })
      await this.c.reporter.report(record.id, owner, root, counted)
      if (counted.failures.length === 0 && counted.copies >= this.init.copies) await this.c.state.set(key, JSON.stringify(members))
    } catch (err: any) {
      log.error('taking over the part of %s in %s failed: %s', name, record.id.slice(0, 8), err.message)
    }
  }
}
