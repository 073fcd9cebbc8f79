// Forgetting and pruning on a running agent. A forget is carried by a signed notice: applied here
// (the record goes, the notice stays in its place as a tombstone, the record is no longer
// republished, the head lists the notice, the snapshot's agent state is deleted), then gossiped;
// agents that missed the gossip learn it from this agent's head. A prune deletes the blocks that no
// snapshot this agent knows needs, between captures, never during one.
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { FORGET_TOPIC, encodeForgetNotice, signForgetNotice, type Catalog, type ForgetNotice, type SnapshotRecord } from '../metadata/index.js'
import { LAST_ROOT, type AgentState } from '../state/index.js'
import { anySignal, every, timeoutSignal } from '../util/index.js'
import { InvalidRetentionRequestError } from './errors.js'
import { applyPolicy, policyProblem, type RetentionPolicy } from './policy.js'
import { prune, type KeptRoot, type PruneComponents, type PruneStats } from './prune.js'
import type { Mesh } from '../node/index.js'
import type { BlockGetter } from '../store/index.js'
import type { AbortOptions, PrivateKey, Startable } from '@libp2p/interface'

const log = logger('snapmesh:retention')

export interface RetentionComponents {
  privateKey: PrivateKey
  mesh: Pick<Mesh, 'peerId' | 'publish'>
  catalog: Pick<Catalog, 'list' | 'resolve' | 'forget'>
  state: Pick<AgentState, 'get' | 'forgetSnapshot'>
  blocks: PruneComponents['blocks']
  /** is the snapshot running here? A running snapshot is never forgotten */
  isRunning: (id: string) => boolean
  /** the metadata publisher: a forgotten record is no longer republished, and the head changes */
  published: { forgetPublished: (id: string) => void, publishHead: (options?: AbortOptions) => Promise<void> }
  /** a getter for one owner's blocks (the mark phase reads every kept manifest) */
  getterFor: (owner: string) => Promise<BlockGetter>
  /** runs one task at a time, in order: prunes and captures never overlap */
  serial: { add: <T>(fn: () => Promise<T>) => Promise<T> }
  clock?: () => number
}

export interface RetentionInit {
  pruneGraceMs: number
  /** how long after a forget notice that asks for it the store is pruned (default 2 s) */
  pruneDelayMs?: number
  /**
   * how often the store is swept of blocks no record references (older than the grace period),
   * whether or not anyone prunes; 0 or absent: never on its own
   */
  sweepMs?: number
}

export interface ForgetRequest {
  /** snapshot IDs or unique prefixes; or else `keep` */
  snapshots?: string[]
  keep?: RetentionPolicy
  prune?: boolean
  dryRun?: boolean
}

export interface ForgetOutcome {
  forgotten: SnapshotRecord[]
  kept: Array<{ record: SnapshotRecord, reasons: string[] }>
  prune?: PruneStats
}

export interface PruneRequest {
  dryRun?: boolean
  /** snapshots to count as forgotten already (a dry run of forget --prune) */
  without?: ReadonlySet<string>
}

export class RetentionService implements Startable {
  private readonly c: RetentionComponents
  private readonly init: RetentionInit
  private readonly clock: () => number
  private controller = new AbortController()
  private pruneTimer?: ReturnType<typeof setTimeout>

  constructor (components: RetentionComponents, init: RetentionInit) {
    this.c = components
    this.init = init
    this.clock = components.clock ?? Date.now
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    const sweepMs = this.init.sweepMs ?? 0
    if (sweepMs > 0) {
      every(sweepMs, this.controller.signal, async () => {
        const stats = await this.prune({})
        if (stats.deleted > 0) log('periodic sweep deleted %d blocks (%d bytes) no record references', stats.deleted, stats.bytesFreed)
      }, (err) => { log.error('periodic sweep failed: %s', err.message) })
    }
  }

  async stop (): Promise<void> {
    this.controller.abort()
    clearTimeout(this.pruneTimer)
    this.pruneTimer = undefined
  }

  /**
   * Applies a forget notice whose signature was checked. Returns false when it changed nothing
   * (known already) or the snapshot is still running here.
   */
  async applyForget (notice: ForgetNotice): Promise<boolean> {
    if (this.c.isRunning(notice.id)) {
      log('forget notice for %s ignored: the snapshot is still running here', notice.id.slice(0, 8))
      return false
    }
    const { record, first } = await this.c.catalog.forget(notice)
    if (!first) return false
    log('snapshot %s forgotten by %s', notice.id.slice(0, 8), notice.by)
    this.c.published.forgetPublished(notice.id)
    await this.c.state.forgetSnapshot(notice.id).catch((err: Error) => { log.error('deleting the state of %s failed: %s', notice.id.slice(0, 8), err.message) })
    if (record != null) await this.c.published.publishHead({ signal: anySignal(this.controller.signal, timeoutSignal(30_000)) }).catch(() => {})
    if (notice.prune) this.schedulePrune()
    return true
  }

  /** one prune shortly after a burst of forget notices that ask for it */
  private schedulePrune (): void {
    if (this.pruneTimer != null || this.controller.signal.aborted) return
    this.pruneTimer = setTimeout(() => {
      this.pruneTimer = undefined
      this.prune({}).catch(err => { log.error('prune after forget failed: %s', err.message) })
    }, this.init.pruneDelayMs ?? 2000)
    this.pruneTimer.unref()
  }

  /** what `req` forgets and keeps; with `dryRun`, nothing changes */
  async forget (req: ForgetRequest, options: AbortOptions = {}): Promise<ForgetOutcome> {
    const ids = req.snapshots ?? []
    if (ids.length > 0 && req.keep != null) throw new InvalidRetentionRequestError('give snapshot IDs or keep rules, not both')
    if (ids.length === 0 && req.keep == null) throw new InvalidRetentionRequestError('nothing to forget: give snapshot IDs or at least one keep rule (--keep-last, --keep-daily, ...)')
    const doomed = req.keep != null ? await this.byPolicy(req.keep, options) : { forgotten: await this.byId(ids, options), kept: [] }
    const out: ForgetOutcome = { forgotten: doomed.forgotten, kept: doomed.kept }
    if (req.dryRun === true) {
      if (req.prune === true) out.prune = await this.prune({ dryRun: true, without: new Set(doomed.forgotten.map(d => d.id)) }, options)
      return out
    }
    for (const r of doomed.forgotten) {
      options.signal?.throwIfAborted()
      const notice = await signForgetNotice(this.c.privateKey, { id: r.id, by: this.c.mesh.peerId, time: this.clock(), prune: req.prune === true })
      await this.applyForget(notice)
      try {
        await this.c.mesh.publish(FORGET_TOPIC, encodeForgetNotice(notice))
      } catch (err: any) {
        // no subscribed peer right now: the notice reaches the others through this agent's head
        log('forget notice for %s not sent: %s', r.id.slice(0, 8), err.message)
      }
    }
    if (req.prune === true) {
      clearTimeout(this.pruneTimer)
      this.pruneTimer = undefined
      out.prune = await this.prune({}, options)
    }
    return out
  }

  private async byId (ids: string[], options: AbortOptions): Promise<SnapshotRecord[]> {
    const doomed: SnapshotRecord[] = []
    const seen = new Set<string>()
    for (const id of ids) {
      const r = await this.c.catalog.resolve(id, options)
      if (r.status === 'running') throw new InvalidRetentionRequestError(`snapshot ${r.id.slice(0, 8)} is still running: it can be forgotten once it has ended`)
      if (!seen.has(r.id)) doomed.push(r)
      seen.add(r.id)
    }
    return doomed
  }

  private async byPolicy (policy: RetentionPolicy, options: AbortOptions): Promise<ForgetOutcome> {
    const problem = policyProblem(policy)
    if (problem != null) throw new InvalidRetentionRequestError(problem)
    const all = await this.c.catalog.list(options)
    const finished = all.filter(r => r.status !== 'running')
    let decisions
    try {
      decisions = applyPolicy(finished.map(r => ({ id: r.id, startedAt: r.startedAt, ...(r.tag != null ? { tag: r.tag } : {}) })), policy)
    } catch (err: any) {
      throw new InvalidRetentionRequestError(String(err.message))
    }
    const byId = new Map(finished.map(r => [r.id, r]))
    const out: ForgetOutcome = { forgotten: [], kept: all.filter(r => r.status === 'running').map(record => ({ record, reasons: ['running'] })) }
    for (const d of decisions) {
      const record = byId.get(d.id)
      if (record == null) continue
      if (d.keep) out.kept.push({ record, reasons: d.reasons })
      else out.forgotten.push(record)
    }
    return out
  }

  /**
   * Deletes the blocks that no snapshot this agent knows needs (every participant's part, since
   * this agent may hold copies of any of them) and that its next capture does not build on.
   */
  async prune (req: PruneRequest, options: AbortOptions = {}): Promise<PruneStats> {
    const signal = anySignal(this.controller.signal, options.signal)
    return this.c.serial.add(async () => {
      const roots: KeptRoot[] = []
      for (const r of await this.c.catalog.list({ signal })) {
        if (req.without?.has(r.id) === true) continue
        for (const part of r.results) {
          if (part.status === 'ok' && part.root != null) roots.push({ snapshot: r.id, owner: part.peerId, root: part.root })
        }
      }
      const base = await this.c.state.get(LAST_ROOT)
      if (base != null) roots.push({ owner: this.c.mesh.peerId, root: CID.parse(base) })
      return prune({ blocks: this.c.blocks, getterFor: this.c.getterFor }, {
        roots,
        graceMs: this.init.pruneGraceMs,
        now: this.clock(),
        dryRun: req.dryRun === true
      }, { signal })
    })
  }
}
