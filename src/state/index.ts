// The agent's own state: small values that say what this agent did or must resume, apart from
// the snapshot catalog (which holds what the fleet agreed on). Each value has one owner:
//   lamport                       the snapshot protocol's Lamport clock
//   last-root                     the incremental base of the next capture
//   frozen                        barrier snapshots this agent is frozen for (thawed after a crash)
//   head-seq                      the sequence number of this agent's last signed head
//   replicated/<id>               the members an own part was last pushed over (repair)
//   taken-over/<id>/<peer>        the members a gone owner's part was last taken over with (repair)
// A snapshot's keys are deleted when the snapshot is forgotten.
import { logger } from '@libp2p/logger'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { AgentStateNotStartedError, InvalidStateKeyError } from './errors.js'
import type { AbortOptions, Startable } from '@libp2p/interface'

export { AgentStateNotStartedError, InvalidStateKeyError } from './errors.js'

const log = logger('snapmesh:state')

export const LAMPORT = 'lamport'
export const LAST_ROOT = 'last-root'
export const FROZEN = 'frozen'
export const HEAD_SEQ = 'head-seq'
export const replicatedKey = (id: string): string => `replicated/${id}`
export const takenOverKey = (id: string, owner: string): string => `taken-over/${id}/${owner}`

/** where keys of this agent lived before they had a store of their own */
export interface LegacyMeta {
  getMeta: (key: string, options?: AbortOptions) => Promise<string | undefined>
}

export interface AgentStateInit {
  /** folder of the LevelDB database */
  path: string
}

const KEY = /^[a-z][a-z-]*(\/[A-Za-z0-9._-]+)*\/?$/

function checkKey (key: string): string {
  if (key.length === 0 || key.length > 512 || !KEY.test(key)) throw new InvalidStateKeyError(`agent state key ${JSON.stringify(key.slice(0, 80))} must be 1 to 512 characters of the form name[/part...]`)
  return key
}

/** Small durable values the agent keeps for itself (fsynced LevelDB writes). */
export class AgentState implements Startable {
  private readonly path: string
  private store?: LevelDatastore

  constructor (init: AgentStateInit) {
    this.path = init.path
  }

  async start (): Promise<void> {
    if (this.store != null) return
    const store = new LevelDatastore(this.path)
    await store.open()
    this.store = store
  }

  async stop (): Promise<void> {
    const store = this.store
    this.store = undefined
    await store?.close()
  }

  private get ds (): LevelDatastore {
    if (this.store == null) throw new AgentStateNotStartedError(`the agent state at ${this.path} is not started`)
    return this.store
  }

  async get (key: string, options: AbortOptions = {}): Promise<string | undefined> {
    options.signal?.throwIfAborted()
    try {
      return new TextDecoder().decode(await this.ds.get(new Key('/' + checkKey(key)), options))
    } catch (err: any) {
      if (err?.name === 'NotFoundError' || err?.code === 'ERR_NOT_FOUND' || err?.notFound === true) return undefined
      throw err
    }
  }

  /** a durable write: it survives a crash once it resolves */
  async set (key: string, value: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.ds.db.put(new Key('/' + checkKey(key)).toString(), new TextEncoder().encode(value), { sync: true })
  }

  async delete (key: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    await this.ds.db.del(new Key('/' + checkKey(key)).toString(), { sync: true })
  }

  /** every key that starts with `prefix` */
  async keys (prefix: string, options: AbortOptions = {}): Promise<string[]> {
    checkKey(prefix)
    const out: string[] = []
    for await (const k of this.ds.queryKeys({ prefix: '/' + prefix }, options)) {
      const key = k.toString().slice(1)
      if (key.startsWith(prefix)) out.push(key)
    }
    return out
  }

  /** deletes every key a snapshot has; returns how many there were */
  async forgetSnapshot (id: string, options: AbortOptions = {}): Promise<number> {
    const keys = [replicatedKey(id), ...await this.keys(`taken-over/${id}/`, options)]
    let n = 0
    for (const key of keys) {
      if (await this.get(key, options) == null) continue
      await this.delete(key, options)
      n++
    }
    return n
  }

  /**
   * Moves the values an older version kept among the catalog's meta keys into this store, once:
   * a key already here is left as it is.
   */
  async adoptLegacy (legacy: LegacyMeta, options: AbortOptions = {}): Promise<void> {
    for (const key of [LAMPORT, LAST_ROOT, FROZEN, HEAD_SEQ]) {
      if (await this.get(key, options) != null) continue
      const v = await legacy.getMeta(key, options)
      if (v != null) {
        await this.set(key, v, options)
        log('adopted %s from the catalog', key)
      }
    }
  }
}
