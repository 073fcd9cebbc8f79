import { createHmac, randomBytes } from 'node:crypto'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import * as cborg from '@ipld/dag-cbor'
import { lpStream, type LengthPrefixedStream } from 'it-length-prefixed-stream'
import { CID } from 'multiformats/cid'
import PQueue from 'p-queue'
import { Uint8ArrayList } from 'uint8arraylist'
import { BLOCKS_PROTOCOL } from '../node/protocols.js'
import { CorruptBlockError, verifyBlock } from '../store/index.js'
import { BlockUnavailableError, InvalidRequestError } from './errors.js'
import type { BlockGetter, Blocks } from '../store/index.js'
import type { AbortOptions, Libp2p, PeerId, Startable, Stream } from '@libp2p/interface'

export { BlockUnavailableError, InvalidRequestError } from './errors.js'

const log = logger('snapmesh:exchange')

/** Largest block either side sends: the chunker's 4 MiB maximum plus room for manifest nodes. */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024 + 64 * 1024
/** CIDs per request. */
export const MAX_WANTS = 64
const FOUND = 0
const MISSING = 1
const CORRUPT = 2

/** what a holder says of its copy of a block */
export type CopyState = 'ok' | 'missing' | 'corrupt'

export interface BlockExchangeComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  blocks: Pick<Blocks, 'get' | 'has'>
}

export interface BlockExchangeInit {
  /** outgoing requests in flight at once, over all peers */
  concurrency?: number
  /** time allowed for one request, from dial to last byte */
  timeoutMs?: number
  /** inbound requests served at once per connection */
  maxInboundStreams?: number
}

/**
 * The block-exchange protocol (`/snapmesh/blocks/1.0.0`). A request is one length-prefixed frame,
 * a dag-cbor list of at most MAX_WANTS CIDs; the answer is one frame per CID in the same order: a
 * status byte (0 found, 1 missing) followed, when found, by the block's bytes. Every block received
 * is checked against its CID before it is returned.
 */
export class BlockExchange implements Startable {
  private readonly components: BlockExchangeComponents
  private readonly queue: PQueue
  private readonly timeoutMs: number
  private readonly maxInboundStreams: number
  private started = false

  constructor (components: BlockExchangeComponents, init: BlockExchangeInit = {}) {
    this.components = components
    this.queue = new PQueue({ concurrency: init.concurrency ?? 8 })
    this.timeoutMs = init.timeoutMs ?? 30_000
    this.maxInboundStreams = init.maxInboundStreams ?? 32
  }

  async start (): Promise<void> {
    if (this.started) return
    await this.components.libp2p.handle(BLOCKS_PROTOCOL, ({ stream }) => {
      this.serve(stream).catch(err => {
        log.error('serving a block request failed: %s', err.message)
        stream.abort(err)
      })
    }, { maxInboundStreams: this.maxInboundStreams, maxOutboundStreams: 64 })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.queue.clear()
    await this.components.libp2p.unhandle(BLOCKS_PROTOCOL)
    this.started = false
  }

  private async serve (stream: Stream): Promise<void> {
    const signal = AbortSignal.timeout(this.timeoutMs)
    const lp = lpStream(stream, { maxDataLength: MAX_WANTS * 128 })
    const request = decodeRequest((await lp.read({ signal })).subarray())
    if (request.check) {
      // each copy is read and re-hashed here; only its state travels back, with a proof of
      // holding over the asked ranges when the asker sent a challenge
      for (const cid of request.cids) {
        let state = MISSING
        let proof: Uint8Array | undefined
        try {
          if (await this.components.blocks.has(cid, { signal })) {
            const bytes = await this.components.blocks.get(cid, { signal })
            state = FOUND
            if (request.challenge != null) proof = proveHolding(bytes, request.challenge)
          }
        } catch (err: any) {
          state = err.code === 'ERR_CORRUPT_BLOCK' ? CORRUPT : MISSING
        }
        await lp.write(proof != null ? new Uint8ArrayList(Uint8Array.of(state), proof) : Uint8Array.of(state), { signal })
      }
      await closeWhenPeerDone(stream, lp, signal)
      return
    }
    for (const cid of request.cids) {
      let block: Uint8Array | undefined
      let state = MISSING
      try {
        if (await this.components.blocks.has(cid, { signal })) block = await this.components.blocks.get(cid, { signal })
      } catch (err: any) {
        // a corrupt local copy is never served: the asker is told, and fetches it elsewhere
        log.error('cannot serve %s: %s', cid, err.message)
        if (err.code === 'ERR_CORRUPT_BLOCK') state = CORRUPT
      }
      if (block == null) {
        await lp.write(Uint8Array.of(state), { signal })
      } else {
        await lp.write(new Uint8ArrayList(Uint8Array.of(FOUND), block), { signal })
      }
    }
    await closeWhenPeerDone(stream, lp, signal)
  }

  /**
   * One request to one peer: waits for a slot, dials, writes `request`, lets `read` take the
   * answers, closes the stream, and aborts it on any error.
   */
  private async request<T> (peer: PeerId | string, cids: CID[], request: Uint8Array, maxDataLength: number, read: (lp: LengthPrefixedStream, peerId: PeerId, signal: AbortSignal) => Promise<T>, options: AbortOptions): Promise<T> {
    if (cids.length > MAX_WANTS) throw new InvalidRequestError(`at most ${MAX_WANTS} CIDs per request, got ${cids.length}`)
    const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
    return await this.queue.add(async () => {
      const signal = options.signal != null
        ? AbortSignal.any([options.signal, AbortSignal.timeout(this.timeoutMs)])
        : AbortSignal.timeout(this.timeoutMs)
      const stream = await this.components.libp2p.dialProtocol(peerId, BLOCKS_PROTOCOL, { signal })
      try {
        const lp = lpStream(stream, { maxDataLength })
        await lp.write(request, { signal })
        const out = await read(lp, peerId, signal)
        await stream.close({ signal })
        return out
      } catch (err: any) {
        stream.abort(err)
        throw err
      }
    }, { signal: options.signal, throwOnTimeout: true }) as T
  }

  /**
   * Asks a peer for the state of its copies: it re-reads and re-hashes each one. With a
   * challenge, the answer for each copy it has also carries `proveHolding(copy, challenge)`.
   */
  async check (peer: PeerId | string, cids: CID[], options: AbortOptions & { challenge?: Challenge } = {}): Promise<Array<{ state: CopyState, proof?: Uint8Array }>> {
    const req = options.challenge != null ? { check: cids, nonce: options.challenge.nonce, ranges: options.challenge.ranges } : { check: cids }
    return this.request(peer, cids, cborg.encode(req), 64, async (lp, _peerId, signal) => {
      const out: Array<{ state: CopyState, proof?: Uint8Array }> = []
      for (let i = 0; i < cids.length; i++) {
        const frame = (await lp.read({ signal })).subarray()
        const state: CopyState = frame[0] === FOUND ? 'ok' : frame[0] === CORRUPT ? 'corrupt' : 'missing'
        out.push(frame.length > 1 ? { state, proof: frame.subarray(1) } : { state })
      }
      return out
    }, options)
  }

  /**
   * Fetches blocks from one peer. Resolves to one entry per CID: the verified bytes, or undefined
   * when the peer does not have it. A block whose bytes do not match its CID, or that the peer
   * reports corrupt, throws CorruptBlockError.
   */
  async fetch (peer: PeerId | string, cids: CID[], options: AbortOptions = {}): Promise<Array<Uint8Array | undefined>> {
    return this.request(peer, cids, cborg.encode(cids), MAX_BLOCK_BYTES + 1, async (lp, peerId, signal) => {
      const out: Array<Uint8Array | undefined> = []
      for (const cid of cids) {
        const frame = (await lp.read({ signal })).subarray()
        if (frame[0] === MISSING && frame.length === 1) {
          out.push(undefined)
          continue
        }
        if (frame[0] === CORRUPT && frame.length === 1) {
          throw new CorruptBlockError(`peer ${peerId.toString()} holds a corrupt copy of block ${cid.toString()}`)
        }
        if (frame[0] !== FOUND) throw new InvalidRequestError(`peer ${peerId.toString()} sent a malformed block frame`)
        const bytes = frame.subarray(1)
        verifyBlock(cid, bytes)
        out.push(bytes)
      }
      return out
    }, options)
  }
}

/**
 * Closes a served stream once the asker has read everything and closed its side. Closing while
 * written data still waits for the asker's receive window makes the muxer reset the stream, and the
 * asker would lose the tail of the answer.
 */
export async function closeWhenPeerDone (stream: Stream, lp: { read(options?: AbortOptions): Promise<unknown> }, signal: AbortSignal): Promise<void> {
  try {
    await lp.read({ signal })
  } catch {
    // the end of the stream, as expected
  }
  await stream.close({ signal })
}

/** a request is a list of CIDs to send, or `{ check: [CIDs] }` to report on */
/** a proof-of-holding challenge: a fresh nonce and byte ranges of the block */
export interface Challenge {
  nonce: Uint8Array
  /** [offset, length] pairs; clamped to the block */
  ranges: Array<[number, number]>
}

/** HMAC-SHA256 keyed by the nonce over the challenged ranges of a block */
export function proveHolding (bytes: Uint8Array, challenge: Challenge): Uint8Array {
  const mac = createHmac('sha256', challenge.nonce)
  for (const [off, len] of challenge.ranges) {
    const start = Math.min(off, bytes.byteLength)
    mac.update(bytes.subarray(start, Math.min(bytes.byteLength, start + len)))
  }
  return mac.digest()
}

/** a fresh challenge: a 32-byte nonce and four ranges of up to 4 KiB within `size` bytes */
export function newChallenge (size: number, random: (n: number) => Uint8Array = randomBytes): Challenge {
  const r = Buffer.from(random(16))
  const ranges: Array<[number, number]> = []
  for (let i = 0; i < 4; i++) ranges.push([size === 0 ? 0 : r.readUInt32BE(i * 4) % size, 4096])
  return { nonce: random(32), ranges }
}

function decodeRequest (bytes: Uint8Array): { check: boolean, cids: CID[], challenge?: Challenge } {
  let value: any
  try {
    value = cborg.decode(bytes)
  } catch (err: any) {
    throw new InvalidRequestError(`block request is not dag-cbor: ${String(err.message)}`)
  }
  if (value != null && !Array.isArray(value) && typeof value === 'object' && Array.isArray(value.check)) {
    const out: { check: boolean, cids: CID[], challenge?: Challenge } = { check: true, cids: checkCids(value.check) }
    if (value.nonce != null) {
      const ranges = value.ranges
      if (!(value.nonce instanceof Uint8Array) || value.nonce.length < 16 || value.nonce.length > 64) throw new InvalidRequestError('challenge nonce must be 16 to 64 bytes')
      if (!Array.isArray(ranges) || ranges.length === 0 || ranges.length > 16 ||
        !ranges.every((r: unknown) => Array.isArray(r) && r.length === 2 && r.every(n => Number.isSafeInteger(n) && n >= 0) && r[1] <= 65536)) {
        throw new InvalidRequestError('challenge ranges must be 1 to 16 [offset, length] pairs of at most 64 KiB')
      }
      out.challenge = { nonce: value.nonce, ranges }
    }
    return out
  }
  return { check: false, cids: checkCids(value) }
}

function checkCids (value: unknown): CID[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_WANTS) {
    throw new InvalidRequestError(`block request must list 1 to ${MAX_WANTS} CIDs`)
  }
  return value.map((v, i) => {
    const cid = CID.asCID(v)
    if (cid == null) throw new InvalidRequestError(`block request entry ${i} is not a CID`)
    return cid
  })
}

/**
 * A BlockGetter that reads the local store first and otherwise asks holders over the
 * block-exchange protocol, in the order `holdersFor` gives for each block; a holder that could not
 * be reached is tried last from then on. Every block is verified against its CID.
 */
export class RemoteBlockGetter implements BlockGetter {
  blocksFetched = 0
  private readonly unreachable = new Set<string>()
  private readonly holdersFor: (cid: CID) => string[]

  constructor (private readonly components: { blocks: Pick<Blocks, 'get' | 'has'>, exchange: BlockExchange }, init: { holders: string[] | ((cid: CID) => string[]) }) {
    const h = init.holders
    this.holdersFor = typeof h === 'function' ? h : () => h
  }

  async get (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    const holders = this.holdersFor(cid)
    if (await this.components.blocks.has(cid, options)) {
      try {
        return await this.components.blocks.get(cid, options)
      } catch (err: any) {
        if (holders.length === 0) throw err
        log.error('local copy of %s unusable, asking holders: %s', cid, err.message)
      }
    }
    const ordered = [...holders.filter(h => !this.unreachable.has(h)), ...holders.filter(h => this.unreachable.has(h))]
    const failures: string[] = []
    for (const holder of ordered) {
      options.signal?.throwIfAborted()
      try {
        const [block] = await this.components.exchange.fetch(holder, [cid], options)
        if (block != null) {
          this.blocksFetched++
          return block
        }
        failures.push(`${holder}: does not have it`)
      } catch (err: any) {
        if (options.signal?.aborted === true) throw err
        if (err.code !== 'ERR_CORRUPT_BLOCK') this.unreachable.add(holder)
        failures.push(`${holder}: ${String(err.message)}`)
      }
    }
    throw new BlockUnavailableError(`block ${cid.toString()} is not available from any holder (${failures.join('; ') || 'no holders known'})`)
  }
}
