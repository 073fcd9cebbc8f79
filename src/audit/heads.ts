// Audit heads: a host's signed statement of where its log ends ({ peerId, seq, hash, time }, an
// "audit-head" envelope), gossiped every few minutes on AUDIT_TOPIC. Every member keeps the newest
// head of every other member, durably, so a copy of each host's log position lives elsewhere; a
// different hash for a sequence number already held is kept as evidence of a fork. A host asks the
// members for the heads they hold of it over AUDIT_HEADS_PROTOCOL to verify its own log.
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from 'it-length-prefixed-stream'
import { EnvelopeError, encodeEnvelope, openEnvelope, peerIdProblem, sealEnvelope } from '../envelope/index.js'
import { InvalidAuditHeadError, StaleAuditHeadError, WrongAuditHeadAuthorError } from './errors.js'
import type { GossipAction, GossipTopic, GossipVerdict } from '../node/index.js'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { timeoutSignal } from '../util/index.js'

const log = logger('snapmesh:audit:heads')

/** The gossipsub topic audit heads travel on. */
export const AUDIT_TOPIC = '/snapmesh/audit/1.0.0'
/** Ask a member for the heads of your own log it holds: it answers one frame, a list of head envelopes. */
export const AUDIT_HEADS_PROTOCOL = '/snapmesh/audit-heads/1.0.0'
/** fork evidence kept per peer */
export const MAX_FORKS = 8
/** peers whose heads are kept */
export const MAX_PEERS = 4096
const MAX_ANSWER_BYTES = 64 * 1024

export interface AuditHeadBody {
  peerId: string
  seq: number
  /** hex sha2-256 of the log's last line */
  hash: string
  /** ms since the epoch */
  time: number
}

export interface AuditHead extends AuditHeadBody {
  /** the envelope's bytes, as received: what is kept and handed on */
  bytes: Uint8Array
}

function decodeBody (b: Record<string, unknown>, where: string): AuditHeadBody {
  for (const k of Object.keys(b)) if (!['peerId', 'seq', 'hash', 'time'].includes(k)) throw new InvalidAuditHeadError(`${where}: unknown field "${k}"`)
  const problem = peerIdProblem(b.peerId)
  if (problem != null) throw new InvalidAuditHeadError(`${where}: field "peerId" ${problem}`)
  if (!Number.isSafeInteger(b.seq) || (b.seq as number) < 1) throw new InvalidAuditHeadError(`${where}: field "seq" must be a positive integer`)
  if (typeof b.hash !== 'string' || !/^[0-9a-f]{64}$/.test(b.hash)) throw new InvalidAuditHeadError(`${where}: field "hash" must be 64 hex digits`)
  if (!Number.isSafeInteger(b.time) || (b.time as number) < 0) throw new InvalidAuditHeadError(`${where}: field "time" must be a non-negative integer`)
  return b as unknown as AuditHeadBody
}

export async function signAuditHead (privateKey: PrivateKey, body: AuditHeadBody): Promise<Uint8Array> {
  return encodeEnvelope(await sealEnvelope(privateKey, 'audit-head', { peerId: body.peerId, seq: body.seq, hash: body.hash, time: body.time }))
}

/** Decodes and verifies an audit head; throws InvalidAuditHeadError. */
export async function decodeAuditHead (bytes: Uint8Array): Promise<AuditHead> {
  try {
    const env = await openEnvelope(bytes, 'audit-head', decodeBody)
    return { ...env.body, bytes }
  } catch (err: any) {
    if (err instanceof EnvelopeError) throw new InvalidAuditHeadError(err.message, { cause: err })
    throw err
  }
}

interface Held {
  head: AuditHead
  /** heads with the seq of one kept before and another hash */
  forks: AuditHead[]
}

export type Offered = 'kept' | 'stale' | 'fork'

/** A fork: two heads of one peer with the same seq and different hashes. */
export interface ForkEvidence {
  peerId: string
  seq: number
  hashes: string[]
}

/** The newest head of every other member, and fork evidence, kept in <dir>/heads.json. */
export class HeadStore {
  private readonly file: string
  private readonly held = new Map<string, Held>()
  private writing: Promise<void> = Promise.resolve()

  constructor (init: { dir: string }) {
    this.file = path.join(init.dir, 'heads.json')
  }

  async start (): Promise<void> {
    let text: string
    try {
      text = await fs.readFile(this.file, 'utf8')
    } catch (err: any) {
      if (err.code === 'ENOENT') return
      throw err
    }
    let saved: Record<string, { head: string, forks?: string[] }>
    try {
      saved = JSON.parse(text).peers ?? {}
    } catch (err: any) {
      log.error('%s is not JSON (%s): starting with no heads', this.file, err.message)
      return
    }
    for (const [peer, h] of Object.entries(saved)) {
      try {
        const head = await decodeAuditHead(new Uint8Array(Buffer.from(h.head, 'base64')))
        if (head.peerId !== peer) continue
        const forks: AuditHead[] = []
        for (const f of h.forks ?? []) forks.push(await decodeAuditHead(new Uint8Array(Buffer.from(f, 'base64'))))
        this.held.set(peer, { head, forks: forks.filter(f => f.peerId === peer) })
      } catch (err: any) {
        log.error('a kept audit head of %s is unreadable: %s', peer, err.message)
      }
    }
  }

  async stop (): Promise<void> {
    await this.writing
  }

  /** what offer() would do with a head, without keeping it */
  judge (head: AuditHeadBody): Offered {
    const h = this.held.get(head.peerId)
    if (h == null) return this.held.size >= MAX_PEERS ? 'stale' : 'kept'
    if (head.seq > h.head.seq) return 'kept'
    if (head.seq === h.head.seq && head.hash !== h.head.hash) return h.forks.some(f => f.hash === head.hash) ? 'stale' : 'fork'
    return 'stale'
  }

  /** Keeps a verified head when it is newer than the one held, or as fork evidence; durable before it resolves. */
  async offer (head: AuditHead): Promise<Offered> {
    const verdict = this.judge(head)
    if (verdict === 'stale') return verdict
    const h = this.held.get(head.peerId)
    if (verdict === 'fork' && h != null) {
      h.forks = [...h.forks, head].slice(-MAX_FORKS)
      log.error('audit head fork: %s signed two heads at seq %d (%s and %s)', head.peerId, head.seq, h.head.hash.slice(0, 12), head.hash.slice(0, 12))
    } else {
      this.held.set(head.peerId, { head, forks: h?.forks ?? [] })
    }
    await this.save()
    return verdict
  }

  /** the head kept for a peer, and the fork evidence against it */
  get (peerId: string): { head: AuditHead, forks: AuditHead[] } | undefined {
    const h = this.held.get(peerId)
    return h != null ? { head: h.head, forks: [...h.forks] } : undefined
  }

  list (): Array<{ head: AuditHead, forks: AuditHead[] }> {
    return [...this.held.values()].map(h => ({ head: h.head, forks: [...h.forks] })).sort((a, b) => a.head.peerId.localeCompare(b.head.peerId))
  }

  forks (): ForkEvidence[] {
    const out: ForkEvidence[] = []
    for (const h of this.list()) {
      const bySeq = new Map<number, Set<string>>()
      for (const x of [h.head, ...h.forks]) bySeq.set(x.seq, (bySeq.get(x.seq) ?? new Set()).add(x.hash))
      for (const [seq, hashes] of bySeq) if (hashes.size > 1) out.push({ peerId: h.head.peerId, seq, hashes: [...hashes].sort() })
    }
    return out
  }

  /** written to a temporary file, fsynced and renamed: a crash leaves the old file or the new one */
  private async save (): Promise<void> {
    const run = this.writing.then(async () => {
      const peers: Record<string, { head: string, forks: string[] }> = {}
      for (const [peer, h] of this.held) peers[peer] = { head: Buffer.from(h.head.bytes).toString('base64'), forks: h.forks.map(f => Buffer.from(f.bytes).toString('base64')) }
      const tmp = `${this.file}.tmp`
      const fh = await fs.open(tmp, 'w', 0o600)
      try {
        await fh.writeFile(JSON.stringify({ v: 1, peers }))
        await fh.sync()
      } finally {
        await fh.close()
      }
      await fs.rename(tmp, this.file)
      const d = await fs.open(path.dirname(this.file), 'r')
      try { await d.sync() } finally { await d.close() }
    })
    this.writing = run.catch(() => {})
    await run
  }
}

function actionFor (err: unknown): GossipAction {
  if (err instanceof InvalidAuditHeadError || err instanceof WrongAuditHeadAuthorError) return 'reject'
  return 'ignore'
}

/**
 * The gossip check of an audit head: it must decode and verify (reject), come from the peer it
 * names (reject), be of another peer than this one and newer than the head kept, or a fork (ignore).
 */
export async function validateAuditHeadGossip (msg: { from: string, data: Uint8Array }, store: Pick<HeadStore, 'judge'>, self: string): Promise<GossipVerdict<AuditHead>> {
  try {
    const head = await decodeAuditHead(msg.data)
    if (head.peerId !== msg.from) throw new WrongAuditHeadAuthorError(`audit head names ${head.peerId} but was sent by ${msg.from}`)
    if (head.peerId === self) throw new StaleAuditHeadError('an audit head of this host itself')
    if (store.judge(head) === 'stale') throw new StaleAuditHeadError(`audit head of ${head.peerId} at seq ${head.seq} is not newer than the one kept`)
    return { action: 'accept', message: head }
  } catch (err: any) {
    return { action: actionFor(err), error: err instanceof Error ? err : new Error(String(err)) }
  }
}

export function auditHeadTopic (store: HeadStore, self: string, onKept?: (head: AuditHead, verdict: Offered) => void): GossipTopic<AuditHead> {
  return {
    topic: AUDIT_TOPIC,
    validate: async (msg) => validateAuditHeadGossip(msg, store, self),
    decode: decodeAuditHead,
    handle: async (head) => {
      const verdict = await store.offer(head)
      if (verdict !== 'stale') onKept?.(head, verdict)
    }
  }
}

/** Serves AUDIT_HEADS_PROTOCOL: a member asking gets the heads of its own log this host holds. */
export async function serveHeads (libp2p: Pick<Libp2p, 'handle'>, store: HeadStore): Promise<void> {
  await libp2p.handle(AUDIT_HEADS_PROTOCOL, ({ stream, connection }) => {
    const held = store.get(connection.remotePeer.toString())
    const list = held != null ? [held.head.bytes, ...held.forks.map(f => f.bytes)] : []
    const lp = lpStream(stream, { maxDataLength: MAX_ANSWER_BYTES })
    const signal = timeoutSignal(10_000)
    lp.write(dagCbor.encode(list), { signal }).then(async () => { await stream.close({ signal }) }).catch((err: Error) => {
      log('answering %s for its audit heads failed: %s', connection.remotePeer, err.message)
      stream.abort(err)
    })
  }, { maxInboundStreams: 2 })
}

/**
 * Asks one member for the heads of this host's log it holds. Only heads signed by this host count
 * (a holder cannot forge one, only withhold it).
 */
export async function askHeads (libp2p: Pick<Libp2p, 'dialProtocol'>, holder: string, self: string, options: { signal?: AbortSignal } = {}): Promise<AuditHead[]> {
  const signal = AbortSignal.any([timeoutSignal(10_000), ...(options.signal != null ? [options.signal] : [])])
  const stream = await libp2p.dialProtocol(peerIdFromString(holder), AUDIT_HEADS_PROTOCOL, { signal })
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_ANSWER_BYTES })
    const list = dagCbor.decode((await lp.read({ signal })).subarray())
    await stream.close({ signal }).catch(() => {})
    if (!Array.isArray(list)) throw new InvalidAuditHeadError(`${holder} answered something that is not a list of heads`)
    const out: AuditHead[] = []
    for (const b of list.slice(0, MAX_FORKS + 1)) {
      if (!(b instanceof Uint8Array)) continue
      try {
        const head = await decodeAuditHead(b)
        if (head.peerId === self) out.push(head)
      } catch (err: any) {
        log('%s handed on an audit head that does not verify: %s', holder, err.message)
      }
    }
    return out
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
}
