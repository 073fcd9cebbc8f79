import { createHmac, randomBytes } from 'node:crypto'
import { TimeoutError } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import * as cborg from '@ipld/dag-cbor'
import { lpStream, type LengthPrefixedStream } from 'it-length-prefixed-stream'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import PQueue from 'p-queue'
import { Uint8ArrayList } from 'uint8arraylist'
import { BLOCKS_PROTOCOL, BLOCKS_SESSION_PROTOCOL } from '../node/protocols.js'
import { CorruptBlockError, verifyBlock } from '../store/index.js'
import { BlockUnavailableError, InvalidRequestError } from './errors.js'
import type { BlockGetter, Blocks } from '../store/index.js'
import type { AbortOptions, Libp2p, PeerId, Startable, Stream } from '@libp2p/interface'
import { timeoutSignal } from '../util/index.js'

export { BlockUnavailableError, InvalidRequestError } from './errors.js'

const log = logger('snapmesh:exchange')

/** Largest block either side sends: the chunker's 4 MiB maximum plus room for manifest nodes. */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024 + 64 * 1024
/** CIDs per request. */
export const MAX_WANTS = 64
/** largest request frame */
const MAX_REQUEST_BYTES = MAX_WANTS * 128
const FOUND = 0
const MISSING = 1
const CORRUPT = 2
/** answers to one request are written together until they come to this many bytes */
const ANSWERS_TOGETHER = 64 * 1024
/** how long a session stream with nothing asked stays open for the next want */
const SESSION_IDLE_MS = 2_000

/** what a holder says of its copy of a block */
export type CopyState = 'ok' | 'missing' | 'corrupt'

export interface BlockExchangeComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  blocks: Pick<Blocks, 'get' | 'has'>
}

export interface BlockExchangeInit {
  /** outgoing requests in flight at once, over all peers; also the wants in flight on one session */
  concurrency?: number
  /** time allowed for each step of a request: the dial, and each answer to arrive */
  timeoutMs?: number
  /** inbound requests served at once per connection */
  maxInboundStreams?: number
}

/** a block as it arrived, verified; `undefined` when the peer does not have it */
export type OnBlock = (index: number, block: Uint8ArrayList | undefined) => void | Promise<void>

/**
 * The block-exchange protocol. An asker sends requests, each one length-prefixed frame holding a
 * dag-cbor list of at most MAX_WANTS CIDs; the holder answers each in turn with one frame per CID
 * in the same order: a status byte (0 found, 1 missing, 2 corrupt) followed, when found, by the
 * block's bytes. Under `/snapmesh/blocks/1.0.0` an asker sends one request per stream; under
 * `/snapmesh/blocks/1.1.0` it may send more before the answers arrive, and the holder answers
 * them one after the other. Every block received is checked against its CID before it is used.
 */
export class BlockExchange implements Startable {
  private readonly components: BlockExchangeComponents
  private readonly queue: PQueue
  private readonly concurrency: number
  private readonly timeoutMs: number
  private readonly maxInboundStreams: number
  private readonly peerIds = new Map<string, PeerId>()
  private readonly sessions = new Map<string, Session>()
  private started = false

  constructor (components: BlockExchangeComponents, init: BlockExchangeInit = {}) {
    this.components = components
    this.concurrency = init.concurrency ?? 8
    this.queue = new PQueue({ concurrency: this.concurrency })
    this.timeoutMs = init.timeoutMs ?? 30_000
    this.maxInboundStreams = init.maxInboundStreams ?? 32
  }

  async start (): Promise<void> {
    if (this.started) return
    const handler = ({ stream }: { stream: Stream }): void => {
      this.serve(stream).catch(err => {
        log.error('serving a block request failed: %s', err.message)
        stream.abort(err)
      })
    }
    const limits = { maxInboundStreams: this.maxInboundStreams, maxOutboundStreams: 64 }
    await this.components.libp2p.handle(BLOCKS_PROTOCOL, handler, limits)
    await this.components.libp2p.handle(BLOCKS_SESSION_PROTOCOL, handler, limits)
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.queue.clear()
    for (const session of this.sessions.values()) session.abort(new Error('the block exchange stopped'))
    this.sessions.clear()
    await this.components.libp2p.unhandle(BLOCKS_PROTOCOL)
    await this.components.libp2p.unhandle(BLOCKS_SESSION_PROTOCOL)
    this.started = false
  }

  /**
   * Answers the requests on one stream until the asker ends its side. Found blocks are written
   * behind a small header without copying them; answers of one request are written together until
   * they reach ANSWERS_TOGETHER bytes, and the next are read from the store only once the muxer
   * took those, so a slow asker holds this side back.
   */
  private async serve (stream: Stream): Promise<void> {
    const reader = lpStream(readSide(stream), { maxDataLength: MAX_REQUEST_BYTES })
    const blocks = this.components.blocks
    const timeoutMs = this.timeoutMs
    const step = new Deadline(timeoutMs)
    async function * answers (): AsyncGenerator<Uint8Array | Uint8ArrayList> {
      for (let served = 0; ; served++) {
        let frame: Uint8ArrayList
        try {
          frame = await step.run(async signal => reader.read({ signal }))
        } catch (err: any) {
          // the asker closed its side: every request it sent is answered
          if (served > 0 && err.name === 'UnexpectedEOFError') return
          throw err
        }
        const request = decodeRequest(frame.subarray())
        // small answers go out together, so that tiny blocks and check answers do not cost a
        // muxer frame each; a large block goes out on its own as soon as it is read
        let ready = new Uint8ArrayList()
        for (const [i, cid] of request.cids.entries()) {
          ready.append(await step.run(async signal => answerFor(blocks, cid, request, signal)))
          if (ready.byteLength < ANSWERS_TOGETHER && i < request.cids.length - 1) continue
          // an asker that stops reading must not hold this stream for ever
          const stuck = setTimeout(() => stream.abort(new TimeoutError(`the asker read nothing for ${timeoutMs} ms`)), timeoutMs)
          try {
            yield ready
          } finally {
            clearTimeout(stuck)
          }
          ready = new Uint8ArrayList()
        }
      }
    }
    // the sink ends once every answer went to the muxer and this side is closed; only then is
    // the stream closed, so no answer is cut short
    await stream.sink(answers())
    await stream.close()
  }

  private peerId (peer: PeerId | string): PeerId {
    if (typeof peer !== 'string') return peer
    let id = this.peerIds.get(peer)
    if (id == null) {
      if (this.peerIds.size >= 1024) this.peerIds.clear()
      id = peerIdFromString(peer)
      this.peerIds.set(peer, id)
    }
    return id
  }

  /**
   * One request to one peer on a stream of its own: waits for a slot, dials, writes `request`,
   * lets `read` take the answers, closes the stream, and aborts it on any error. Each step (the
   * dial, each answer) must finish within the timeout; the time `read` spends on a block it got
   * does not count.
   */
  private async request<T> (peer: PeerId | string, cids: CID[], request: Uint8Array, maxDataLength: number, read: (next: () => Promise<Uint8ArrayList>, peerId: PeerId) => Promise<T>, options: AbortOptions): Promise<T> {
    if (cids.length > MAX_WANTS) throw new InvalidRequestError(`at most ${MAX_WANTS} CIDs per request, got ${cids.length}`)
    const peerId = this.peerId(peer)
    return await this.queue.add(async () => {
      const step = new Deadline(this.timeoutMs, options.signal)
      let stream: Stream | undefined
      try {
        stream = await step.run(async signal => this.components.libp2p.dialProtocol(peerId, BLOCKS_PROTOCOL, { signal }))
        const lp = lpStream(stream, { maxDataLength })
        await step.run(async signal => { await lp.write(request, { signal }) })
        const out = await read(async () => step.run(async signal => lp.read({ signal })), peerId)
        const s = stream
        await step.run(async signal => { await s.close({ signal }) })
        return out
      } catch (err: any) {
        stream?.abort(err)
        throw err
      } finally {
        step.clear()
      }
    }, { signal: options.signal, throwOnTimeout: true }) as T
  }

  /**
   * Asks a peer for the state of its copies: it re-reads and re-hashes each one. With a
   * challenge, the answer for each copy it has also carries `proveHolding(copy, challenge)`.
   */
  async check (peer: PeerId | string, cids: CID[], options: AbortOptions & { challenge?: Challenge } = {}): Promise<Array<{ state: CopyState, proof?: Uint8Array }>> {
    const req = options.challenge != null ? { check: cids, nonce: options.challenge.nonce, ranges: options.challenge.ranges } : { check: cids }
    return this.request(peer, cids, cborg.encode(req), 64, async (next) => {
      const out: Array<{ state: CopyState, proof?: Uint8Array }> = []
      for (let i = 0; i < cids.length; i++) {
        const frame = (await next()).subarray()
        const state: CopyState = frame[0] === FOUND ? 'ok' : frame[0] === CORRUPT ? 'corrupt' : 'missing'
        out.push(frame.length > 1 ? { state, proof: frame.subarray(1) } : { state })
      }
      return out
    }, options)
  }

  /**
   * Fetches blocks from one peer in one request and hands each to `onBlock` as soon as it has
   * arrived and matched its CID, in order; the next answer is read once `onBlock` resolves, so a
   * slow consumer holds the sender back. A block whose bytes do not match its CID, or that the
   * peer reports corrupt, throws CorruptBlockError.
   */
  async fetchEach (peer: PeerId | string, cids: CID[], onBlock: OnBlock, options: AbortOptions = {}): Promise<void> {
    await this.request(peer, cids, cborg.encode(cids), MAX_BLOCK_BYTES + 1, async (next, peerId) => {
      for (const [i, cid] of cids.entries()) {
        await onBlock(i, blockFromFrame(await next(), cid, peerId))
      }
    }, options)
  }

  /**
   * Fetches blocks from one peer. Resolves to one entry per CID: the verified bytes, or undefined
   * when the peer does not have it. A block whose bytes do not match its CID, or that the peer
   * reports corrupt, throws CorruptBlockError.
   */
  async fetch (peer: PeerId | string, cids: CID[], options: AbortOptions = {}): Promise<Array<Uint8Array | undefined>> {
    const out: Array<Uint8Array | undefined> = cids.map(() => undefined)
    await this.fetchEach(peer, cids, (i, block) => { out[i] = block?.subarray() }, options)
    return out
  }

  /**
   * Fetches one block from one peer over a stream shared with the other wants to that peer
   * (`/snapmesh/blocks/1.1.0`), so that many small fetches in a row cost no stream each. At most
   * `concurrency` wants per peer are in flight; the stream closes after a short idle time. Resolves
   * to the verified bytes, or undefined when the peer does not have the block.
   */
  async want (peer: PeerId | string, cid: CID, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    const peerId = this.peerId(peer)
    const key = peerId.toString()
    let session = this.sessions.get(key)
    if (session == null || session.closed) {
      session = new Session(this.components.libp2p, peerId, {
        inFlight: this.concurrency,
        timeoutMs: this.timeoutMs,
        onClose: (s) => { if (this.sessions.get(key) === s) this.sessions.delete(key) }
      })
      this.sessions.set(key, session)
    }
    const block = await session.want(cid, options)
    return block?.subarray()
  }
}

/** the readable half of a stream, for a reader that must leave the writable half alone */
function readSide (stream: Stream): { source: Stream['source'], sink: (source: unknown) => Promise<void> } {
  return { source: stream.source, sink: async () => {} }
}

/** a length-prefixed answer frame: the status byte, then the payload if any, never copied */
function answerFrame (status: number, payload?: Uint8Array): Uint8Array | Uint8ArrayList {
  const length = 1 + (payload?.byteLength ?? 0)
  const head = new Uint8Array(varint.encodingLength(length) + 1)
  varint.encodeTo(length, head, 0)
  head[head.length - 1] = status
  return payload == null ? head : new Uint8ArrayList(head, payload)
}

/** the holder's answer for one CID of a request */
async function answerFor (blocks: Pick<Blocks, 'get' | 'has'>, cid: CID, request: { check: boolean, challenge?: Challenge }, signal: AbortSignal): Promise<Uint8Array | Uint8ArrayList> {
  let bytes: Uint8Array | undefined
  try {
    // the store re-hashes the copy as it reads it
    if (await blocks.has(cid, { signal })) bytes = await blocks.get(cid, { signal })
  } catch (err: any) {
    // a corrupt local copy is never served: the asker is told, and fetches it elsewhere
    if (err.code === 'ERR_CORRUPT_BLOCK') {
      log.error('cannot serve %s: %s', cid, err.message)
      return answerFrame(CORRUPT)
    }
    if (err.code !== 'ERR_BLOCK_NOT_FOUND') log.error('cannot serve %s: %s', cid, err.message)
    return answerFrame(MISSING)
  }
  if (bytes == null) return answerFrame(MISSING)
  // a check sends back only the state, with a proof of holding when the asker sent a challenge
  if (request.check) return answerFrame(FOUND, request.challenge != null ? proveHolding(bytes, request.challenge) : undefined)
  return answerFrame(FOUND, bytes)
}

/** the block in an answer frame, checked against its CID; undefined when the peer lacks it */
function blockFromFrame (frame: Uint8ArrayList, cid: CID, peerId: PeerId): Uint8ArrayList | undefined {
  const status = frame.byteLength > 0 ? frame.get(0) : -1
  if (status === MISSING && frame.byteLength === 1) return undefined
  if (status === CORRUPT && frame.byteLength === 1) {
    throw new CorruptBlockError(`peer ${peerId.toString()} holds a corrupt copy of block ${cid.toString()}`)
  }
  if (status !== FOUND) throw new InvalidRequestError(`peer ${peerId.toString()} sent a malformed block frame`)
  const block = frame.sublist(1)
  verifyBlock(cid, block)
  return block
}

/**
 * A time limit for one step at a time, tied to the caller's signal: `run` gives the step a signal
 * that aborts when the step takes longer than `ms`, when the caller aborts or on `abort`; once
 * aborted, it stays aborted.
 */
class Deadline {
  private readonly controller = new AbortController()
  private readonly onAbort: () => void

  constructor (private readonly ms: number, private readonly outer?: AbortSignal) {
    this.onAbort = () => { this.controller.abort(outer?.reason) }
    outer?.throwIfAborted()
    outer?.addEventListener('abort', this.onAbort, { once: true })
  }

  get signal (): AbortSignal {
    return this.controller.signal
  }

  async run<T> (step: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.controller.signal.throwIfAborted()
    const timer = setTimeout(() => { this.controller.abort(new TimeoutError(`no answer within ${this.ms} ms`)) }, this.ms)
    try {
      return await step(this.controller.signal)
    } finally {
      clearTimeout(timer)
    }
  }

  abort (err: Error): void {
    this.controller.abort(err)
  }

  clear (): void {
    this.outer?.removeEventListener('abort', this.onAbort)
  }
}

interface PendingWant {
  cid: CID
  resolve: (block: Uint8ArrayList | undefined) => void
  reject: (err: Error) => void
  /** the caller gave up: the answer is still read, then dropped */
  dropped: boolean
}

/**
 * The asker's side of a `/snapmesh/blocks/1.1.0` stream: wants go out one request each as they
 * come, up to `inFlight` unanswered, and answers come back in the same order. An answer that does
 * not arrive in time, a malformed frame or a broken stream fails every want still waiting, and
 * the session closes; a block that is corrupt (by the holder's report or by its hash) fails only
 * its own want.
 */
class Session {
  closed = false
  private stream?: Stream
  private lp?: LengthPrefixedStream<Stream>
  private readonly opening: Promise<void>
  private readonly waiting: PendingWant[] = []
  private readonly slots: PQueue
  /** writes go out one after the other */
  private writing: Promise<void> = Promise.resolve()
  private reading = false
  private idle?: ReturnType<typeof setTimeout>
  private readonly deadline: Deadline

  constructor (libp2p: Pick<Libp2p, 'dialProtocol'>, private readonly peerId: PeerId, private readonly init: { inFlight: number, timeoutMs: number, onClose: (s: Session) => void }) {
    this.slots = new PQueue({ concurrency: init.inFlight })
    this.deadline = new Deadline(init.timeoutMs)
    this.opening = this.deadline.run(async signal => {
      this.stream = await libp2p.dialProtocol(peerId, BLOCKS_SESSION_PROTOCOL, { signal })
      this.lp = lpStream(this.stream, { maxDataLength: MAX_BLOCK_BYTES + 1 })
    })
    this.opening.catch(err => { this.abort(err) })
  }

  async want (cid: CID, options: AbortOptions): Promise<Uint8ArrayList | undefined> {
    return this.slots.add(async () => {
      if (this.closed) throw new Error('the session closed')
      clearTimeout(this.idle)
      await this.opening
      const lp = this.lp as LengthPrefixedStream<Stream>
      const signal = options.signal
      const result = new Promise<Uint8ArrayList | undefined>((resolve, reject) => {
        const onAbort = (): void => {
          want.dropped = true
          reject(signal?.reason)
        }
        const done = (): void => { signal?.removeEventListener('abort', onAbort) }
        const want: PendingWant = {
          cid,
          resolve: (block) => { done(); resolve(block) },
          reject: (err) => { done(); reject(err) },
          dropped: false
        }
        this.waiting.push(want)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
      const request = cborg.encode([cid])
      this.writing = this.writing.then(async () => { await lp.write(request, { signal: this.deadline.signal }) })
      this.writing.catch(err => { this.abort(err) })
      if (!this.reading) void this.readAnswers()
      return result
    }, { signal: options.signal, throwOnTimeout: true }) as Promise<Uint8ArrayList | undefined>
  }

  /** reads answers while wants wait for them; then closes the stream after an idle time */
  private async readAnswers (): Promise<void> {
    this.reading = true
    const lp = this.lp as LengthPrefixedStream<Stream>
    try {
      while (this.waiting.length > 0) {
        const frame = await this.deadline.run(async signal => lp.read({ signal }))
        const want = this.waiting.shift() as PendingWant
        let block: Uint8ArrayList | undefined
        try {
          block = blockFromFrame(frame, want.cid, this.peerId)
        } catch (err: any) {
          // wrong bytes for one block leave the stream usable; a malformed frame does not
          if (err.code !== 'ERR_CORRUPT_BLOCK') throw err
          want.reject(err)
          continue
        }
        if (!want.dropped) want.resolve(block)
      }
    } catch (err: any) {
      this.abort(err)
      return
    } finally {
      this.reading = false
    }
    this.idle = setTimeout(() => { void this.close() }, SESSION_IDLE_MS)
    this.idle.unref?.()
  }

  private async close (): Promise<void> {
    if (this.closed || this.waiting.length > 0 || this.slots.pending > 0) return
    this.closed = true
    this.init.onClose(this)
    try {
      await this.writing
      await this.stream?.close({ signal: timeoutSignal(this.init.timeoutMs) })
    } catch (err: any) {
      this.stream?.abort(err)
    }
  }

  abort (err: Error): void {
    clearTimeout(this.idle)
    if (!this.closed) {
      this.closed = true
      this.init.onClose(this)
    }
    this.deadline.abort(err)
    this.stream?.abort(err)
    // wants still queued for a slot find the session closed and fail when their turn comes
    for (const want of this.waiting.splice(0)) want.reject(err)
  }
}

/**
 * Closes a stream once the peer has read everything and closed its side. Closing while written
 * data still waits for the peer's receive window makes the muxer reset the stream, and the peer
 * would lose the tail of what was written.
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
 * be reached is tried last from then on. Gets that run at once share one stream per holder (see
 * `BlockExchange.want`). Every block is verified against its CID.
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
        const block = await this.components.exchange.want(holder, cid, options)
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
