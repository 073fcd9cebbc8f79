// The tamper-evident audit log of this host (README, "Audit log"): AuditService owns the log on
// disk, the heads other members gossip, the summary of rejected gossip, and the verify that puts
// them together. The composition root builds one and hands `record` to whoever has something to log.
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { every } from '../util/index.js'
import { AUDIT_HEADS_PROTOCOL, AUDIT_TOPIC, HeadStore, askHeads, auditHeadTopic, serveHeads, signAuditHead, type ForkEvidence } from './heads.js'
import { AuditLog, type LocatedEntry } from './log.js'
import { verifyLog, type LogVerifyReport } from './verify.js'
import type { AuditAction } from './entry.js'
import type { Mesh } from '../node/index.js'
import type { Libp2p, PrivateKey, Startable } from '@libp2p/interface'

export * from './entry.js'
export * from './errors.js'
export * from './heads.js'
export * from './log.js'
export * from './verify.js'

const log = logger('snapmesh:audit:service')

/** rows of one rejected-gossip summary; the rest are counted in `more` */
export const MAX_REJECTION_ROWS = 100

export interface AuditServiceComponents {
  privateKey: PrivateKey
  mesh: Pick<Mesh, 'peerId' | 'publish' | 'subscribe' | 'connectedSpeaking'>
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  clock?: () => number
}

export interface AuditServiceInit {
  /** <dataDir>/audit */
  dir: string
  /** how often this host gossips its log head */
  headMs: number
  /** rejected gossip is summed over windows this long, one entry per window that had any */
  windowMs: number
  maxFileBytes?: number
}

/** what recordSnapshot needs of a final record */
export interface FinalSnapshot {
  id: string
  status: string
  tag?: string
  initiator: string
  expected: string[]
  results: Array<{ peerId: string, status: string }>
}

export interface AuditVerifyReport extends LogVerifyReport {
  /** members asked for the heads they hold of this log, and those that did not answer */
  asked: string[]
  unreachable: Array<{ peerId: string, error: string }>
  /** forks among the heads this host holds of other members */
  forks: ForkEvidence[]
}

export class AuditService implements Startable {
  readonly log: AuditLog
  readonly heads: HeadStore
  private readonly c: AuditServiceComponents
  private readonly init: AuditServiceInit
  private readonly clock: () => number
  private controller = new AbortController()
  private rejections = new Map<string, { peer: string, topic: string, reason: string, count: number }>()
  private windowStart = 0
  private more = 0
  private readonly snapshots = new Map<string, string>()

  constructor (components: AuditServiceComponents, init: AuditServiceInit) {
    this.c = components
    this.init = init
    this.clock = components.clock ?? Date.now
    this.log = new AuditLog(components.privateKey, { dir: init.dir, maxFileBytes: init.maxFileBytes, clock: this.clock })
    this.heads = new HeadStore({ dir: init.dir })
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    await this.log.start()
    await this.heads.start()
    this.windowStart = this.clock()
    this.c.mesh.subscribe(auditHeadTopic(this.heads, this.c.mesh.peerId))
    await serveHeads(this.c.libp2p, this.heads)
    const onError = (err: Error): void => { log('audit task failed: %s', err.message) }
    every(this.init.headMs, this.controller.signal, async () => { await this.publishHead() }, onError)
    every(this.init.windowMs, this.controller.signal, async () => { await this.flushRejections() }, onError)
  }

  async stop (): Promise<void> {
    this.controller.abort()
    await this.c.libp2p.unhandle(AUDIT_HEADS_PROTOCOL).catch(() => {})
    await this.flushRejections().catch(() => {})
    await this.heads.stop()
    await this.log.stop()
  }

  /** Appends an entry; a failure is logged, never thrown at the caller (what it logs has happened). */
  async record (action: AuditAction, data: object): Promise<void> {
    try {
      await this.log.append(action, data)
    } catch (err: any) {
      log.error('audit entry %s not written: %s', action, err.message)
    }
  }

  /** Runs `fn` and records `data` with its outcome: `ok`, or the error's code. */
  async recorded<T> (action: AuditAction, data: object, fn: () => Promise<T>): Promise<T> {
    try {
      const out = await fn()
      await this.record(action, { ...data, outcome: 'ok' })
      return out
    } catch (err: any) {
      await this.record(action, { ...data, outcome: typeof err?.code === 'string' && err.code !== '' ? err.code : 'ERR_INTERNAL' })
      throw err
    }
  }

  /** Logs a snapshot this host took part in once its status is final here (again if it changes). */
  async recordSnapshot (r: FinalSnapshot): Promise<void> {
    const self = this.c.mesh.peerId
    const mine = r.results.find(x => x.peerId === self)
    if (mine == null && !r.expected.includes(self)) return
    if (this.snapshots.get(r.id) === r.status) return
    this.snapshots.set(r.id, r.status)
    if (this.snapshots.size > 10_000) this.snapshots.delete(this.snapshots.keys().next().value as string)
    await this.record('snapshot', { id: r.id, status: r.status, ...(r.tag != null ? { tag: r.tag } : {}), initiator: r.initiator, part: mine?.status ?? 'missing' })
  }

  /** Counts one rejected gossip message; written as one summary entry per window. */
  rejected (ev: { topic: string, from: string, reason: string }): void {
    const key = `${ev.from}\n${ev.topic}\n${ev.reason}`
    const row = this.rejections.get(key)
    if (row != null) row.count++
    else if (this.rejections.size < MAX_REJECTION_ROWS) this.rejections.set(key, { peer: ev.from, topic: ev.topic, reason: ev.reason, count: 1 })
    else this.more++
  }

  async flushRejections (): Promise<void> {
    const now = this.clock()
    const rows = [...this.rejections.values()]
    const more = this.more
    const from = this.windowStart
    this.rejections = new Map()
    this.more = 0
    this.windowStart = now
    if (rows.length === 0 && more === 0) return
    rows.sort((a, b) => b.count - a.count || a.peer.localeCompare(b.peer))
    await this.record('gossip-rejected', { from: new Date(from).toISOString(), to: new Date(now).toISOString(), counts: rows, ...(more > 0 ? { more } : {}) })
  }

  /** Gossips where this host's log ends (nothing while it is empty). */
  async publishHead (): Promise<void> {
    const head = this.log.head()
    if (head.seq === 0) return
    const bytes = await signAuditHead(this.c.privateKey, { peerId: this.c.mesh.peerId, seq: head.seq, hash: head.hash, time: this.clock() })
    await this.c.mesh.publish(AUDIT_TOPIC, bytes).catch((err: Error) => { log('audit head not sent: %s', err.message) })
  }

  async show (options: { since?: number, limit?: number } = {}): Promise<LocatedEntry[]> {
    return this.log.entries(options)
  }

  /**
   * Verifies this host's log: its chain and signatures, and against the heads the connected
   * members hold of it (asked for now), which is what shows a cut-off tail. Forks among the heads
   * this host holds of others are reported too.
   */
  async verify (options: { signal?: AbortSignal } = {}): Promise<AuditVerifyReport> {
    const self = this.c.mesh.peerId
    const asked = (await this.c.mesh.connectedSpeaking(AUDIT_HEADS_PROTOCOL)).filter(p => p !== self)
    const unreachable: AuditVerifyReport['unreachable'] = []
    const held: Array<{ holder: string, seq: number, hash: string }> = []
    await Promise.all(asked.map(async (peer) => {
      try {
        for (const h of await askHeads(this.c.libp2p, peer, self, options)) held.push({ holder: peer, seq: h.seq, hash: h.hash })
      } catch (err: any) {
        unreachable.push({ peerId: peer, error: String(err.message) })
      }
    }))
    held.sort((a, b) => a.holder.localeCompare(b.holder) || a.seq - b.seq)
    const report = await this.log.exclusive(async () => verifyLog(this.log.folder, self, held))
    const forks = this.heads.forks()
    return { ...report, ok: report.ok && forks.length === 0, asked, unreachable, forks }
  }
}

/** <dataDir>/audit */
export function auditDir (dataDir: string): string {
  return path.join(dataDir, 'audit')
}
