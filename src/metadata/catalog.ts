import { logger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { equals } from 'uint8arrays/equals'
import { encodeResult, verifyResult } from '../wire/index.js'
import { AmbiguousIdError, CatalogNotStartedError, ForgottenSnapshotError, InvalidRecordError, NotFoundError } from './errors.js'
import { decodeForgetNotice, encodeForgetNotice, type ForgetNotice } from './forget.js'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { encodeCopyReport, verifyCopyReport, type CopyReport } from './copies.js'
import { addCopyReport, decodeRecord, encodeRecord, mergeRecords, refreshRecord, type SnapshotRecord } from './record.js'
import type { AbortOptions, Startable } from '@libp2p/interface'

const log = logger('snapmesh:metadata')
const SNAP = '/snapshots/'
const META = '/meta/'
const FORGOTTEN = '/forgotten/'
/** entries that no longer decode (an older format, or damage) are moved here at start, never lost */
const UNREADABLE = '/unreadable'
/** the catalog format: records and notices as signed envelopes */
const FORMAT_KEY = 'catalog-format'
const FORMAT = 'envelope-1'

export interface CatalogInit {
  /** folder of the LevelDB database */
  path: string
  /** ms since the epoch; used to bring the status of records stored while running up to date */
  clock?: () => number
}

function isNotFound (err: any): boolean {
  return err?.name === 'NotFoundError' || err?.code === 'ERR_NOT_FOUND' || err?.notFound === true
}

/**
 * The local catalog: every snapshot this agent knows, in LevelDB, so listing works offline, plus
 * small key/value slots for the agent's own state. Writes are synchronous (fsynced) LevelDB
 * writes. Putting a record merges it with the stored one; reading a record brings its status up
 * to date with the clock.
 */
export class Catalog implements Startable {
  private readonly path: string
  private readonly clock: () => number
  private store?: LevelDatastore
  private started = false
  private chain: Promise<unknown> = Promise.resolve()

  constructor (init: CatalogInit) {
    this.path = init.path
    this.clock = init.clock ?? Date.now
  }

  async start (): Promise<void> {
    if (this.started) return
    // the database is created here, not in the constructor: LevelDB opens itself once created
    const store = new LevelDatastore(this.path)
    await store.open()
    this.store = store
    this.started = true
    // once per data folder: entries written in the format before the signed envelope are moved aside
    if (await this.getMeta(FORMAT_KEY) !== FORMAT) {
      await this.setAsideUnreadable()
      await this.setMeta(FORMAT_KEY, FORMAT)
    }
  }

  /**
   * Moves every record and forget notice that does not decode (written in an older format, or
   * damaged) under `unreadable/`, so that no read trips over it later; the bytes are kept as they
   * were. Returns how many were moved.
   */
  private async setAsideUnreadable (): Promise<number> {
    const moved: Array<{ key: string, to: string, value: Uint8Array, why: string }> = []
    for await (const { key, value } of this.ds.query({ prefix: SNAP })) {
      try {
        await decodeRecord(value, { verify: false })
      } catch (err: any) {
        moved.push({ key: key.toString(), to: UNREADABLE + key.toString(), value, why: String(err.message) })
      }
    }
    for await (const { key, value } of this.ds.query({ prefix: FORGOTTEN })) {
      try {
        await decodeForgetNotice(value)
      } catch (err: any) {
        moved.push({ key: key.toString(), to: UNREADABLE + key.toString(), value, why: String(err.message) })
      }
    }
    for (const m of moved) {
      log.error('catalog entry %s cannot be read (%s): kept under %s', m.key, m.why, m.to)
      await this.ds.db.put(m.to, m.value, { sync: true })
      await this.ds.db.del(m.key, { sync: true })
    }
    return moved.length
  }

  /** the keys of the entries set aside at start because they could not be read */
  async unreadable (options: AbortOptions = {}): Promise<string[]> {
    this.check()
    const out: string[] = []
    for await (const key of this.ds.queryKeys({ prefix: UNREADABLE + '/' }, options)) out.push(key.toString().slice(UNREADABLE.length))
    return out.sort()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.chain.catch(() => {})
    await this.store?.close()
    this.store = undefined
  }

  isStarted (): boolean {
    return this.started
  }

  private check (): void {
    if (!this.started) throw new CatalogNotStartedError(`the catalog at ${this.path} is not started`)
  }

  private get ds (): LevelDatastore {
    if (this.store == null) throw new CatalogNotStartedError(`the catalog at ${this.path} is not started`)
    return this.store
  }

  /** a durable write: LevelDB with sync, so the put survives a crash once it resolves */
  private async write (key: string, value: Uint8Array, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.ds.db.put(new Key(key).toString(), value, { sync: true })
  }

  /** runs writes one after another, so that a read-merge-write never loses a concurrent one */
  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn)
    this.chain = p.catch(() => {})
    return p
  }

  private async read (id: string, options: AbortOptions = {}): Promise<SnapshotRecord | undefined> {
    let bytes: Uint8Array
    try {
      bytes = await this.ds.get(new Key(SNAP + id), options)
    } catch (err: any) {
      if (isNotFound(err)) return undefined
      throw err
    }
    try {
      return await decodeRecord(bytes, { verify: false })
    } catch (err: any) {
      throw new InvalidRecordError(`catalog entry for snapshot ${id} is damaged: ${String(err.message)}`)
    }
  }

  /** The record of a snapshot by full ID, its status as of now; undefined when not known. */
  async get (id: string, options: AbortOptions = {}): Promise<SnapshotRecord | undefined> {
    this.check()
    const rec = await this.read(id, options)
    return rec == null ? undefined : refreshRecord(rec, this.clock())
  }

  /**
   * Stores a record, merged with what is stored for the same ID (each peer's best result, the
   * status recomputed); returns what is stored. Results not stored yet have their signatures
   * checked first. Throws ConflictingRecordError for a record that describes another snapshot
   * under a known ID, and ForgottenSnapshotError for a snapshot that was forgotten.
   */
  async put (record: SnapshotRecord, options: AbortOptions = {}): Promise<SnapshotRecord> {
    this.check()
    return this.serial(async () => {
      if (await this.readForgotten(record.id, options) != null) throw new ForgottenSnapshotError(`snapshot ${record.id.slice(0, 8)} was forgotten: its record is not stored again`)
      const have = await this.read(record.id, options)
      const known = new Map((have?.results ?? []).map(r => [r.peerId, r]))
      for (const r of record.results) {
        const k = known.get(r.peerId)
        // only a result identical to the stored one, field for field, skips the signature check
        if (k != null && equals(encodeResult(k), encodeResult(r))) continue
        await verifyResult(r)
      }
      const knownReports = new Set((have?.copies ?? []).map(r => uint8ArrayToString(encodeCopyReport(r), 'base64')))
      for (const r of record.copies ?? []) {
        if (!knownReports.has(uint8ArrayToString(encodeCopyReport(r), 'base64'))) await verifyCopyReport(r)
      }
      const now = this.clock()
      const merged = mergeRecords(have ?? record, record, now)
      await this.write(SNAP + record.id, encodeRecord(merged).bytes, options)
      return merged
    })
  }

  /**
   * Merges a copy report (its signature already checked) into the record of its snapshot; returns
   * the stored record, or undefined when the snapshot is not known here yet.
   */
  async addCopyReport (report: CopyReport, options: AbortOptions = {}): Promise<SnapshotRecord | undefined> {
    this.check()
    return this.serial(async () => {
      const have = await this.read(report.id, options)
      if (have == null) return undefined
      const merged = addCopyReport(have, report)
      await this.write(SNAP + report.id, encodeRecord(merged).bytes, options)
      return merged
    })
  }

  /** Every record, newest first (by start time, then Lamport time, then ID). Damaged entries are skipped and logged. */
  async list (options: AbortOptions = {}): Promise<SnapshotRecord[]> {
    this.check()
    const now = this.clock()
    const out: SnapshotRecord[] = []
    for await (const { key, value } of this.ds.query({ prefix: SNAP }, options)) {
      try {
        out.push(refreshRecord(await decodeRecord(value, { verify: false }), now))
      } catch (err: any) {
        log.error('catalog entry %s is damaged: %s', key.toString(), err.message)
      }
    }
    return out.sort((a, b) => b.startedAt - a.startedAt || b.lamport - a.lamport || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** A record by full ID or unique prefix. Throws NotFoundError or AmbiguousIdError naming the prefix. */
  async resolve (prefix: string, options: AbortOptions = {}): Promise<SnapshotRecord> {
    this.check()
    const p = prefix.toLowerCase()
    if (!/^[0-9a-f]{1,64}$/.test(p)) throw new NotFoundError(`no snapshot matches ${JSON.stringify(prefix)}: snapshot IDs are 1 to 64 hex digits`)
    const matches: string[] = []
    for await (const key of this.ds.queryKeys({ prefix: SNAP + p }, options)) {
      matches.push(key.toString().slice(SNAP.length))
      if (matches.length > 10) break
    }
    if (matches.length === 0) throw new NotFoundError(`no snapshot matches ${JSON.stringify(prefix)}`)
    if (matches.length > 1) {
      const some = matches.slice(0, 10).map(m => m.slice(0, Math.max(12, p.length + 4)))
      throw new AmbiguousIdError(`${JSON.stringify(prefix)} matches ${matches.length > 10 ? 'more than 10' : matches.length} snapshots (${some.join(', ')}${matches.length > 10 ? ', …' : ''}): give more of the ID`)
    }
    const rec = await this.get(matches[0], options)
    if (rec == null) throw new NotFoundError(`no snapshot matches ${JSON.stringify(prefix)}`)
    return rec
  }

  private async readForgotten (id: string, options: AbortOptions = {}): Promise<ForgetNotice | undefined> {
    let bytes: Uint8Array
    try {
      bytes = await this.ds.get(new Key(FORGOTTEN + id), options)
    } catch (err: any) {
      if (isNotFound(err)) return undefined
      throw err
    }
    return decodeForgetNotice(bytes)
  }

  /**
   * Forgets a snapshot for good: its record is deleted and the notice (its signature already
   * checked) is kept in its place, so the record is never stored again. Returns the record that
   * was forgotten, if this catalog had it; a second notice for the same snapshot changes nothing.
   */
  async forget (notice: ForgetNotice, options: AbortOptions = {}): Promise<{ record?: SnapshotRecord, first: boolean }> {
    this.check()
    return this.serial(async () => {
      const record = await this.read(notice.id, options)
      const first = await this.readForgotten(notice.id, options) == null
      if (first) await this.write(FORGOTTEN + notice.id, encodeForgetNotice(notice), options)
      if (record != null) await this.ds.db.del(new Key(SNAP + notice.id).toString(), { sync: true })
      return { record, first }
    })
  }

  /** The notice a snapshot was forgotten by, or undefined when it was not. */
  async forgotten (id: string, options: AbortOptions = {}): Promise<ForgetNotice | undefined> {
    this.check()
    return this.readForgotten(id, options)
  }

  /** Every forget notice kept, newest first. Damaged entries are skipped and logged. */
  async listForgotten (options: AbortOptions = {}): Promise<ForgetNotice[]> {
    this.check()
    const out: ForgetNotice[] = []
    for await (const { key, value } of this.ds.query({ prefix: FORGOTTEN }, options)) {
      try {
        out.push(await decodeForgetNotice(value))
      } catch (err: any) {
        log.error('forget notice %s is damaged: %s', key.toString(), err.message)
      }
    }
    return out.sort((a, b) => b.time - a.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** A small value the agent keeps (previous manifest root, Lamport clock, head seq, ...). */
  async getMeta (key: string, options: AbortOptions = {}): Promise<string | undefined> {
    this.check()
    try {
      return new TextDecoder().decode(await this.ds.get(new Key(META + metaKey(key)), options))
    } catch (err: any) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  /** Stores a small value durably. */
  async setMeta (key: string, value: string, options: AbortOptions = {}): Promise<void> {
    this.check()
    const k = META + metaKey(key)
    await this.serial(async () => { await this.write(k, new TextEncoder().encode(value), options) })
  }
}

function metaKey (key: string): string {
  if (key.length === 0 || key.length > 512) throw new RangeError(`catalog meta key must be 1 to 512 characters, got ${key.length}`)
  return key
}
