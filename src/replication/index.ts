import { setMaxListeners } from 'node:events'
import * as dagCbor from '@ipld/dag-cbor'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from 'it-length-prefixed-stream'
import { CID } from 'multiformats/cid'
import PQueue from 'p-queue'
import type { Uint8ArrayList } from 'uint8arraylist'
import { manifestBlocks } from '../capture/index.js'
import { closeWhenPeerDone, type BlockExchange } from '../exchange/index.js'
import { REPLICATE_PROTOCOL } from '../node/protocols.js'
import { ReplicationRequestError } from './errors.js'
import { appendTo, fewest, holders } from './placement.js'
import type { Blocks } from '../store/index.js'
import type { AbortOptions, Libp2p, PeerId, Startable, Stream } from '@libp2p/interface'
import { timeoutSignal } from '../util/index.js'

export { holders, weight } from './placement.js'
export { ReplicationRequestError } from './errors.js'

const log = logger('snapmesh:replication')

/** a holder's pulls from the owner: CIDs per request, requests in flight */
const PULL_BATCH = 32
const PULLS_IN_FLIGHT = 2
/** CIDs per request when the holder pulls under a bandwidth limit, one request at a time */
const LIMITED_PULL_BATCH = 4
/** bytes a holder has received and not yet stored, at most (plus one block) */
const UNSTORED_BYTES = 32 * 1024 * 1024
/** blocks a holder writes at once: enough for their fsyncs to overlap, few enough to leave the
 * thread pool to other file work */
const STORES_AT_ONCE = 4

/** CIDs in one replication request */
export const MAX_OFFER = 512

export interface ReplicatorComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  blocks: Blocks
  exchange: Pick<BlockExchange, 'fetchEach'>
}

export interface ReplicatorInit {
  /** copies of every block in all, the owner's counted */
  copies: number
  /** holders served at once */
  concurrency?: number
  /** bytes per second a holder pulls at most (0: no limit) */
  bytesPerSecond?: number
  timeoutMs?: number
}

export interface ReplicationReport {
  blocks: number
  /** the fewest confirmed copies any block of the snapshot has, the owner's counted */
  copies: number
  /** holders that could not be reached or failed, with why */
  failures: string[]
  /** the peers that confirmed blocks, the owner included, sorted */
  holders: string[]
}

/**
 * Pushes a snapshot's blocks to their holders. The owner offers each holder the CIDs placement gives
 * it (`/snapmesh/replicate/1.0.0`: a dag-cbor list of CIDs out, a list of booleans back); the holder
 * pulls what it lacks from the owner over the block-exchange protocol, where every block is checked
 * against its CID before it is stored, stores each one durably as it arrives, and answers which
 * CIDs it now holds.
 */
export class Replicator implements Startable {
  private readonly c: ReplicatorComponents
  private readonly init: ReplicatorInit
  private started = false
  private nextSlot = 0

  constructor (components: ReplicatorComponents, init: ReplicatorInit) {
    this.c = components
    this.init = init
  }

  async start (): Promise<void> {
    if (this.started) return
    await this.c.libp2p.handle(REPLICATE_PROTOCOL, ({ stream, connection }) => {
      this.serve(stream, connection.remotePeer).catch(err => {
        log.error('replication request from %s failed: %s', connection.remotePeer, err.message)
        stream.abort(err)
      })
    }, { maxInboundStreams: 4 })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    await this.c.libp2p.unhandle(REPLICATE_PROTOCOL)
    this.started = false
  }

  /**
   * Keeps pulls under bytesPerSecond on average: every block received books its time at that
   * rate, and the next request waits until what was received before it has had its time. A
   * request in progress is never held up, so the owner never waits on a throttled holder.
   */
  private async throttle (signal: AbortSignal): Promise<void> {
    const wait = this.nextSlot - Date.now()
    if (wait > 0) {
      await new Promise((resolve, reject) => {
        const onAbort = (): void => { clearTimeout(t); reject(signal.reason) }
        const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(undefined) }, wait)
        signal.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  private received (bytes: number): void {
    const rate = this.init.bytesPerSecond ?? 0
    if (rate > 0) this.nextSlot = Math.max(Date.now(), this.nextSlot) + (bytes / rate) * 1000
  }

  /** holder side: fetch what is offered and missing, from the peer that offers it; one offer per stream */
  private async serve (stream: Stream, from: PeerId): Promise<void> {
    const signal = timeoutSignal(this.init.timeoutMs ?? 600_000)
    setMaxListeners(Infinity, signal) // shared by every pull of this offer
    const lp = lpStream(stream, { maxDataLength: MAX_OFFER * 64 + 64 })
    const offer = decodeOffer((await lp.read({ signal })).subarray())
    const held: boolean[] = []
    const missing: CID[] = []
    for (const cid of offer) {
      const has = await this.c.blocks.has(cid, { signal })
      held.push(has)
      if (!has) missing.push(cid)
    }
    // a few requests in flight keep the owner's disk and the link busy; each block is stored as
    // soon as it arrived and matched its CID, while the next ones arrive. Stores run at once so
    // their fsyncs overlap, and at most UNSTORED_BYTES wait for the disk: past that, the pull
    // stops reading and the owner is held back, for no longer than the disk takes.
    const storing = new Set<Promise<void>>()
    let unstored = 0
    const writes = new PQueue({ concurrency: STORES_AT_ONCE })
    const store = async (cid: CID, block: Uint8ArrayList): Promise<void> => {
      this.received(block.byteLength)
      while (unstored > 0 && unstored + block.byteLength > UNSTORED_BYTES) await Promise.race(storing)
      const size = block.byteLength
      unstored += size
      const put: Promise<void> = writes.add(async () => this.c.blocks.put(cid, block, { signal }), { throwOnTimeout: true }).then(() => {}, (err: any) => {
        log.error('could not store %s from %s: %s', cid, from, err.message)
      }).finally(() => {
        unstored -= size
        storing.delete(put)
      })
      storing.add(put)
    }
    // under a bandwidth limit, smaller requests keep each burst short
    const limited = (this.init.bytesPerSecond ?? 0) > 0
    const batchSize = limited ? LIMITED_PULL_BATCH : PULL_BATCH
    const pulls = new PQueue({ concurrency: limited ? 1 : PULLS_IN_FLIGHT })
    for (let i = 0; i < missing.length; i += batchSize) {
      const batch = missing.slice(i, i + batchSize)
      pulls.add(async () => {
        await this.throttle(signal)
        await this.c.exchange.fetchEach(from, batch, async (j, block) => {
          if (block != null) await store(batch[j], block)
        }, { signal })
      }).catch((err: any) => {
        // what did not arrive is not confirmed; the owner learns which blocks from the answer
        log.error('pulling %d blocks from %s failed: %s', batch.length, from, err.message)
      })
    }
    await pulls.onIdle()
    await Promise.all(storing)
    for (const [i, cid] of offer.entries()) if (!held[i]) held[i] = await this.c.blocks.has(cid, { signal })
    await lp.write(dagCbor.encode(held), { signal })
    await closeWhenPeerDone(stream, lp, signal)
  }

  /** owner side: places every block of `root` and pushes each holder its share */
  async replicate (owner: string, root: CID, members: string[], options: AbortOptions = {}): Promise<ReplicationReport> {
    const perHolder = new Map<string, CID[]>()
    const confirmed = new Map<string, number>()
    for await (const { cid } of manifestBlocks(this.c.blocks, root, options)) {
      confirmed.set(cid.toString(), 1)
      for (const h of holders(cid, owner, members, this.init.copies).slice(1)) appendTo(perHolder, h, cid)
    }
    const failures: string[] = []
    const confirmedBy = new Set([owner])
    const queue = new PQueue({ concurrency: this.init.concurrency ?? 4 })
    await Promise.all([...perHolder.entries()].map(async ([holder, cids]) => queue.add(async () => {
      try {
        for (const cid of await this.offer(holder, cids, options)) {
          confirmedBy.add(holder)
          confirmed.set(cid.toString(), (confirmed.get(cid.toString()) ?? 1) + 1)
        }
      } catch (err: any) {
        failures.push(`${holder}: ${String(err.message)}`)
      }
    })))
    return { blocks: confirmed.size, copies: fewest(confirmed.values()), failures, holders: [...confirmedBy].sort() }
  }

  /**
   * Offers `cids`, which this agent holds, to one holder, one stream per batch; the holder pulls
   * what it lacks from this agent. Resolves to the CIDs it confirmed.
   */
  async offer (holder: string, cids: CID[], options: AbortOptions): Promise<CID[]> {
    const ok: CID[] = []
    for (let i = 0; i < cids.length; i += MAX_OFFER) {
      const batch = cids.slice(i, i + MAX_OFFER)
      const signal = AbortSignal.any([timeoutSignal(this.init.timeoutMs ?? 600_000), ...(options.signal != null ? [options.signal] : [])])
      const stream = await this.c.libp2p.dialProtocol(peerIdFromString(holder), REPLICATE_PROTOCOL, { signal })
      try {
        const lp = lpStream(stream, { maxDataLength: MAX_OFFER * 2 + 64 })
        await lp.write(dagCbor.encode(batch), { signal })
        const held = dagCbor.decode((await lp.read({ signal })).subarray())
        if (!Array.isArray(held) || held.length !== batch.length) throw new ReplicationRequestError(`holder ${holder} answered a malformed confirmation`)
        batch.forEach((cid, j) => { if (held[j] === true) ok.push(cid) })
        await stream.close({ signal })
      } catch (err: any) {
        stream.abort(err)
        throw err
      }
    }
    return ok
  }
}

function decodeOffer (bytes: Uint8Array): CID[] {
  let v: unknown
  try {
    v = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new ReplicationRequestError(`replication offer is not dag-cbor: ${String(err.message)}`)
  }
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_OFFER) throw new ReplicationRequestError(`a replication offer lists 1 to ${MAX_OFFER} CIDs`)
  return v.map((x, i) => {
    const cid = CID.asCID(x)
    if (cid == null) throw new ReplicationRequestError(`replication offer entry ${i} is not a CID`)
    return cid
  })
}

export { verifyCopies, type VerifyProblem, type VerifyReport } from './verify.js'
