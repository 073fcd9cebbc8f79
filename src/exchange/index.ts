import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import * as cborg from '@ipld/dag-cbor'
import { lpStream } from 'it-length-prefixed-stream'
import { CID } from 'multiformats/cid'
import PQueue from 'p-queue'
import { Uint8ArrayList } from 'uint8arraylist'
import { BLOCKS_PROTOCOL } from '../node/protocols.js'
import { verifyBlock } from '../store/index.js'
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
    const request = await lp.read({ signal })
    const wants = decodeWants(request.subarray())
    for (const cid of wants) {
      let block: Uint8Array | undefined
      try {
        if (await this.components.blocks.has(cid, { signal })) block = await this.components.blocks.get(cid, { signal })
      } catch (err: any) {
        // a corrupt local copy is reported as missing: the asker fetches it elsewhere
        log.error('cannot serve %s: %s', cid, err.message)
      }
      if (block == null) {
        await lp.write(Uint8Array.of(MISSING), { signal })
      } else {
        await lp.write(new Uint8ArrayList(Uint8Array.of(FOUND), block), { signal })
      }
    }
    await stream.close({ signal })
  }

  /**
   * Fetches blocks from one peer. Resolves to one entry per CID: the verified bytes, or undefined
   * when the peer does not have it. A block whose bytes do not match its CID throws CorruptBlockError.
   */
  async fetch (peer: PeerId | string, cids: CID[], options: AbortOptions = {}): Promise<Array<Uint8Array | undefined>> {
    if (cids.length > MAX_WANTS) throw new InvalidRequestError(`at most ${MAX_WANTS} CIDs per request, got ${cids.length}`)
    const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
    const result = await this.queue.add(async () => {
      const signal = options.signal != null
        ? AbortSignal.any([options.signal, AbortSignal.timeout(this.timeoutMs)])
        : AbortSignal.timeout(this.timeoutMs)
      const stream = await this.components.libp2p.dialProtocol(peerId, BLOCKS_PROTOCOL, { signal })
      try {
        const lp = lpStream(stream, { maxDataLength: MAX_BLOCK_BYTES + 1 })
        await lp.write(cborg.encode(cids), { signal })
        const out: Array<Uint8Array | undefined> = []
        for (const cid of cids) {
          const frame = (await lp.read({ signal })).subarray()
          if (frame[0] === MISSING && frame.length === 1) {
            out.push(undefined)
            continue
          }
          if (frame[0] !== FOUND) throw new InvalidRequestError(`peer ${peerId.toString()} sent a malformed block frame`)
          const bytes = frame.subarray(1)
          verifyBlock(cid, bytes)
          out.push(bytes)
        }
        await stream.close({ signal })
        return out
      } catch (err: any) {
        stream.abort(err)
        throw err
      }
    }, { signal: options.signal })
    return result as Array<Uint8Array | undefined>
  }

  /** One block from the first of `peers` that has an intact copy. */
  async get (peers: Array<PeerId | string>, cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    const failures: string[] = []
    for (const peer of peers) {
      options.signal?.throwIfAborted()
      try {
        const [block] = await this.fetch(peer, [cid], options)
        if (block != null) return block
        failures.push(`${peer.toString()}: does not have it`)
      } catch (err: any) {
        if (options.signal?.aborted === true) throw err
        failures.push(`${peer.toString()}: ${String(err.message)}`)
      }
    }
    throw new BlockUnavailableError(`block ${cid.toString()} is not available from any holder (${failures.join('; ') || 'no holders known'})`)
  }
}

function decodeWants (bytes: Uint8Array): CID[] {
  let value: unknown
  try {
    value = cborg.decode(bytes)
  } catch (err: any) {
    throw new InvalidRequestError(`block request is not dag-cbor: ${String(err.message)}`)
  }
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
 * A BlockGetter that reads the local store first and otherwise asks the given holders, in order,
 * over the block-exchange protocol. Every block is verified against its CID.
 */
export class RemoteBlockGetter implements BlockGetter {
  constructor (private readonly components: { blocks: Pick<Blocks, 'get' | 'has'>, exchange: BlockExchange }, private readonly init: { holders: string[] }) {}

  async get (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    if (await this.components.blocks.has(cid, options)) {
      try {
        return await this.components.blocks.get(cid, options)
      } catch (err: any) {
        if (this.init.holders.length === 0) throw err
        log.error('local copy of %s unusable, asking holders: %s', cid, err.message)
      }
    }
    this.blocksFetched++
    return this.components.exchange.get(this.init.holders, cid, options)
  }

  blocksFetched = 0
}
