// Publishing and syncing metadata through the DHT. Every final record goes into the DHT under its
// CID (and is republished before the DHT's expiry), and this agent's signed head lists the records
// it holds and the forget notices it knows. Every `syncMs` the agent reads the heads of the members
// it knows and fetches the records it lacks or holds in an older form: how an agent that joined
// late, or missed gossip, catches up.
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { HEAD_SEQ, type AgentState } from '../state/index.js'
import { anySignal, every, timeoutSignal } from '../util/index.js'
import { decodeHead, headKey, recordKey, signHead } from './dht.js'
import { ForgottenSnapshotError, InvalidRecordError } from './errors.js'
import { futureDatedIn } from './gossip.js'
import { DEFAULT_MAX_CLOCK_SKEW_MS } from '../wire/index.js'
import { decodeRecord, encodeRecord, type SnapshotRecord } from './record.js'
import { Republisher } from './republish.js'
import type { Catalog } from './catalog.js'
import type { ForgetNotice } from './forget.js'
import type { Mesh } from '../node/index.js'
import type { AbortOptions, PrivateKey, Startable } from '@libp2p/interface'

const log = logger('snapmesh:metadata:sync')

/** most records one head lists */
const HEAD_RECORDS = 1000

export interface MetadataSyncComponents {
  privateKey: PrivateKey
  mesh: Pick<Mesh, 'peerId' | 'dhtPut' | 'dhtGet'>
  catalog: Pick<Catalog, 'list' | 'get' | 'put' | 'forgotten' | 'listForgotten'>
  state: Pick<AgentState, 'get' | 'set'>
  /** the members connected now, this agent excluded */
  members: () => Promise<string[]>
  /** a record merged from another agent's head: its results go to the protocol too */
  onRecord?: (merged: SnapshotRecord) => void
  /** a forget notice (signature checked) from another agent's head that this agent lacked */
  onForget: (notice: ForgetNotice) => Promise<void>
  clock?: () => number
}

export interface MetadataSyncInit {
  syncMs: number
  republishMs: number
  /** times in records and notices further ahead of this agent's clock are refused (default 5 min) */
  maxSkewMs?: number
  /** first sync and first publish of every record after start (default 1 s and 2 s) */
  firstSyncMs?: number
  firstPublishMs?: number
}

export class MetadataSync implements Startable {
  private readonly c: MetadataSyncComponents
  private readonly init: MetadataSyncInit
  private controller = new AbortController()
  private readonly republisher: Republisher
  /** snapshot ID -> the CID of the version this agent last put in the DHT */
  private readonly published = new Map<string, CID>()
  private syncing = false

  constructor (components: MetadataSyncComponents, init: MetadataSyncInit) {
    this.c = components
    this.init = init
    this.republisher = new Republisher({
      put: async (key, value, options) => { await this.c.mesh.dhtPut(key, value, { signal: anySignal(this.controller.signal, options?.signal) }) }
    }, { intervalMs: init.republishMs })
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    await this.republisher.start()
    const signal = this.controller.signal
    every(this.init.syncMs, signal, async () => { await this.sync() }, (err) => { log.error('sync failed: %s', err.message) })
    const later = (ms: number, fn: () => Promise<void>): void => {
      const t = setTimeout(() => { if (!signal.aborted) fn().catch(() => {}) }, ms)
      t.unref()
      signal.addEventListener('abort', () => { clearTimeout(t) }, { once: true })
    }
    later(this.init.firstSyncMs ?? 1000, async () => { await this.sync() })
    later(this.init.firstPublishMs ?? 2000, async () => { await this.publishAll() })
  }

  async stop (): Promise<void> {
    this.controller.abort()
    await this.republisher.stop().catch(() => {})
  }

  private now (): number {
    return (this.c.clock ?? Date.now)()
  }

  private get maxSkewMs (): number {
    return this.init.maxSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS
  }

  private signal (timeoutMs: number, options: AbortOptions = {}): AbortSignal {
    return anySignal(this.controller.signal, timeoutSignal(timeoutMs), options.signal)
  }

  /** stores a final record in the DHT under its CID (and republishes it) and updates the head */
  async publishRecord (record: SnapshotRecord, options: AbortOptions = {}): Promise<void> {
    const { cid, bytes } = encodeRecord(record)
    const before = this.published.get(record.id)
    if (before?.equals(cid) === true) return
    const signal = this.signal(30_000, options)
    // a superseded version of the same snapshot is no longer republished
    if (before != null) this.republisher.forget(recordKey(before))
    this.published.set(record.id, cid)
    await this.republisher.publish(recordKey(cid), bytes, { signal })
    await this.publishHead({ signal })
  }

  /** a forgotten snapshot's record is no longer republished */
  forgetPublished (id: string): void {
    const cid = this.published.get(id)
    if (cid != null) this.republisher.forget(recordKey(cid))
    this.published.delete(id)
  }

  /** signs and puts this agent's head: the records it published, the forget notices it knows */
  async publishHead (options: AbortOptions = {}): Promise<void> {
    const snapshots: Array<{ id: string, cid: CID }> = []
    for (const rec of await this.c.catalog.list(options)) {
      if (snapshots.length >= HEAD_RECORDS) break
      if (rec.status === 'running') continue
      // the version put in the DHT; a record not published yet is encoded once here
      snapshots.push({ id: rec.id, cid: this.published.get(rec.id) ?? encodeRecord(rec).cid })
    }
    const seq = Number(await this.c.state.get(HEAD_SEQ) ?? 0) + 1
    await this.c.state.set(HEAD_SEQ, String(seq))
    const forgotten = await this.c.catalog.listForgotten(options)
    const head = await signHead(this.c.privateKey, { peerId: this.c.mesh.peerId, seq, snapshots, forgotten })
    await this.republisher.publish(headKey(this.c.mesh.peerId), head, { signal: this.signal(30_000, options) })
  }

  /** one round: the members' heads, then the records this agent lacks */
  async sync (): Promise<void> {
    if (this.syncing || this.controller.signal.aborted) return
    this.syncing = true
    try {
      const signal = this.signal(20_000)
      const wanted = new Map<string, CID>()
      for (const peer of await this.c.members()) {
        const bytes = await this.c.mesh.dhtGet(headKey(peer), { signal })
        if (bytes == null) continue
        let head
        try {
          head = await decodeHead(bytes)
        } catch (err: any) {
          log('bad head from %s: %s', peer, err.message)
          continue
        }
        for (const notice of head.forgotten) {
          if (notice.time > this.now() + this.maxSkewMs) {
            log('forget notice for %s in the head of %s refused: dated %d s ahead of this clock', notice.id.slice(0, 8), peer, Math.round((notice.time - this.now()) / 1000))
            continue
          }
          if (await this.c.catalog.forgotten(notice.id) == null) await this.c.onForget(notice)
        }
        for (const s of head.snapshots) {
          if (await this.c.catalog.forgotten(s.id) != null) continue
          const have = await this.c.catalog.get(s.id).catch(() => undefined)
          if (have != null && have.status !== 'running' && encodeRecord(have).cid.equals(s.cid)) continue
          wanted.set(s.cid.toString(), s.cid)
        }
      }
      for (const cid of wanted.values()) {
        const bytes = await this.c.mesh.dhtGet(recordKey(cid), { signal })
        if (bytes == null) continue
        try {
          const record = await decodeRecord(bytes)
          const future = futureDatedIn(record, this.now(), this.maxSkewMs)
          if (future != null) throw new InvalidRecordError(future)
          const merged = await this.c.catalog.put(record)
          this.c.onRecord?.(merged)
          if (merged.status !== 'running') await this.publishRecord(merged).catch(() => {})
        } catch (err: any) {
          if (!(err instanceof ForgottenSnapshotError)) log('record %s rejected: %s', cid, err.message)
        }
      }
    } finally {
      this.syncing = false
    }
  }

  /** at start: every final record this agent knows goes (back) into the DHT and under republishing */
  async publishAll (): Promise<void> {
    for (const rec of await this.c.catalog.list()) {
      if (this.controller.signal.aborted) return
      if (rec.status !== 'running') await this.publishRecord(rec).catch(err => { log('publishing %s failed: %s', rec.id, err.message) })
    }
  }
}
