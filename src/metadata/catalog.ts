import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { AmbiguousIdError, NotFoundError } from './errors.js'
import { decodeRecord, encodeRecord, mergeRecords, type SnapshotRecord } from './record.js'
import type { Startable } from '@libp2p/interface'

const SNAP = '/snapshots/'
const META = '/meta/'

/**
 * The local catalog: every snapshot this agent knows, in LevelDB, so listing works offline.
 * Writes are synchronous (fsynced) LevelDB puts. Putting a record merges it with the stored one.
 */
export class Catalog implements Startable {
  private readonly ds: LevelDatastore
  private chain: Promise<unknown> = Promise.resolve()

  constructor (init: { path: string }) {
    this.ds = new LevelDatastore(init.path)
  }

  async start (): Promise<void> {
    await this.ds.open()
  }

  async stop (): Promise<void> {
    await this.chain.catch(() => {})
    await this.ds.close()
  }

  private async write (key: string, value: Uint8Array): Promise<void> {
    await this.ds.db.put(key, value, { sync: true })
  }

  async get (id: string): Promise<SnapshotRecord | undefined> {
    try {
      return await decodeRecord(await this.ds.get(new Key(SNAP + id)), { verify: false })
    } catch (err: any) {
      if (err.name === 'NotFoundError') return undefined
      throw err
    }
  }

  /** Stores a record, merged with what is stored for the same ID; returns the stored result. */
  async put (record: SnapshotRecord, now = Date.now()): Promise<SnapshotRecord> {
    const run = async (): Promise<SnapshotRecord> => {
      const have = await this.get(record.id)
      const merged = have != null ? mergeRecords(have, record, now) : mergeRecords(record, record, now)
      await this.write(SNAP + record.id, encodeRecord(merged).bytes)
      return merged
    }
    const p = this.chain.then(run, run)
    this.chain = p.catch(() => {})
    return p
  }

  /** Newest first. */
  async list (): Promise<SnapshotRecord[]> {
    const out: SnapshotRecord[] = []
    for await (const { value } of this.ds.query({ prefix: SNAP })) {
      out.push(await decodeRecord(value, { verify: false }))
    }
    return out.sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? -1 : 1))
  }

  /** A full ID or a unique prefix of one. */
  async resolve (prefix: string): Promise<SnapshotRecord> {
    const p = prefix.toLowerCase()
    if (!/^[0-9a-f]{1,64}$/.test(p)) throw new NotFoundError(`no snapshot matches ${JSON.stringify(prefix)}: IDs are hex`)
    const matches: string[] = []
    for await (const key of this.ds.queryKeys({ prefix: SNAP + p })) matches.push(key.toString().slice(SNAP.length))
    if (matches.length === 0) throw new NotFoundError(`no snapshot matches ${JSON.stringify(prefix)}`)
    if (matches.length > 1) throw new AmbiguousIdError(`${JSON.stringify(prefix)} matches ${matches.length} snapshots (${matches.map(m => m.slice(0, 12)).join(', ')}): give more of the ID`)
    return await this.get(matches[0]) as SnapshotRecord
  }

  async getMeta (key: string): Promise<string | undefined> {
    try {
      return new TextDecoder().decode(await this.ds.get(new Key(META + key)))
    } catch (err: any) {
      if (err.name === 'NotFoundError') return undefined
      throw err
    }
  }

  async setMeta (key: string, value: string): Promise<void> {
    await this.write(META + key, new TextEncoder().encode(value))
  }
}
