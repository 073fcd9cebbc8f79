// Results: what each participant reports for a snapshot, signed as a "result" envelope (see
// src/envelope). In memory a result is its body's fields plus v, type, signer and sig.
import { CID } from 'multiformats/cid'
import { encodeEnvelope, readEnvelope, rethrowAs, sealEnvelope, signedBytes, toSigned, verifyEnvelope, type Envelope, type EnvelopeError } from '../envelope/index.js'
import { InvalidMessageError, InvalidSignatureError, MessageTooLargeError } from './errors.js'
import { clean, clip, describe, fail, idField, isObj, only, optStr, optUint, peerIdField, str, uint, type Obj } from './fields.js'
import { MAX_ERROR_LENGTH, MAX_MESSAGE_BYTES, MAX_NAME_LENGTH, MAX_PROBLEMS, MAX_PROBLEM_MESSAGE, MAX_PROBLEM_PATH, MAX_PROBLEM_SOURCE } from './limits.js'
import type { CaptureProblem, CaptureStats } from '../capture/index.js'
import type { PrivateKey } from '@libp2p/interface'

/** a capture's figures, carried as they are in the result */
export type ResultStats = CaptureStats

export const STAT_FIELDS: ReadonlyArray<keyof ResultStats> = ['files', 'dirs', 'symlinks', 'bytes', 'filesRead', 'filesReused', 'bytesRead', 'chunks', 'newChunks', 'newBytes', 'durationMs']

export type Problem = CaptureProblem

/** What a participant reports for a snapshot, before it is signed: the body of its envelope. */
export interface ResultBody {
  id: string
  peerId: string
  /** the host's name, for people */
  name: string
  lamport: number
  /** ms since the epoch */
  time: number
  status: 'ok' | 'error'
  /** manifest root; required when status is 'ok', absent otherwise */
  root?: CID
  stats?: ResultStats
  problems?: Problem[]
  /** how many problems there were in all, when `problems` was cut short */
  problemCount?: number
  error?: string
}

/** A result as held in memory: the body's fields, and the envelope's. */
export interface SignedResult extends ResultBody {
  /** the signing format's version (snapmesh/signed/v1) */
  v: 1
  type: 'result'
  /** the peer whose key signed: `peerId`, for a result that verifies */
  signer: string
  /** Ed25519 signature by `signer`'s key of the result's signed bytes (see resultPayload) */
  sig: Uint8Array
}

const BODY_FIELDS = new Set(['id', 'peerId', 'name', 'lamport', 'time', 'status', 'root', 'stats', 'problems', 'problemCount', 'error'])
const STAT_SET = new Set<string>(STAT_FIELDS)
const PROBLEM_FIELDS = new Set(['source', 'path', 'message'])

/** A result's body map checked field by field. Throws InvalidMessageError naming the field. */
export function decodeResultBody (o: Obj, where = 'result'): ResultBody {
  only(o, BODY_FIELDS, where)
  const id = idField(o, where)
  const peerId = peerIdField(o, 'peerId', where)
  const name = str(o, 'name', where, MAX_NAME_LENGTH)
  const lamport = uint(o, 'lamport', where)
  const time = uint(o, 'time', where)
  const status = o.status
  if (status !== 'ok' && status !== 'error') fail(where, 'status', 'must be "ok" or "error"', status)
  let root: CID | undefined
  if (o.root !== undefined) {
    root = CID.asCID(o.root) ?? undefined
    if (root == null) fail(where, 'root', 'must be a CID', o.root)
    if (status === 'error') fail(where, 'root', 'must be absent from an error result')
  } else if (status === 'ok') {
    fail(where, 'root', 'is required in an ok result')
  }
  let stats: ResultStats | undefined
  if (o.stats !== undefined) {
    const s = o.stats
    if (!isObj(s)) fail(where, 'stats', 'must be a map', s)
    only(s, STAT_SET, `${where}: stats`)
    stats = Object.fromEntries(STAT_FIELDS.map(k => [k, uint(s, k, `${where}: stats`)])) as unknown as ResultStats
  }
  let problems: Problem[] | undefined
  if (o.problems !== undefined) {
    const ps = o.problems
    if (!Array.isArray(ps) || ps.length > MAX_PROBLEMS) fail(where, 'problems', `must be a list of at most ${MAX_PROBLEMS} problems`, ps)
    problems = ps.map((p, i) => {
      const at = `${where}: problems[${i}]`
      if (!isObj(p)) throw new InvalidMessageError(`${at}: must be a map, got ${describe(p)}`, 'problems')
      only(p, PROBLEM_FIELDS, at)
      return { source: str(p, 'source', at, MAX_PROBLEM_SOURCE), path: str(p, 'path', at, MAX_PROBLEM_PATH), message: str(p, 'message', at, MAX_PROBLEM_MESSAGE) }
    })
  }
  const problemCount = optUint(o, 'problemCount', where)
  if (problemCount != null && problemCount < (problems?.length ?? 0)) fail(where, 'problemCount', `must be at least the ${problems?.length ?? 0} problems listed`, problemCount)
  const error = optStr(o, 'error', where, MAX_ERROR_LENGTH)
  return clean({ id, peerId, name, lamport, time, status, root, stats, problems, problemCount, error })
}

const asMessageError = (e: EnvelopeError): Error => new InvalidMessageError(e.message, e.field, { cause: e })

/**
 * A decoded value checked as a result envelope, field by field, returned in its in-memory form.
 * Does not check the signature (see verifyResult). Throws InvalidMessageError naming the field.
 */
export function decodeResultObject (o: unknown, where = 'result'): SignedResult {
  try {
    return toSigned(readEnvelope(o, 'result', decodeResultBody, { where }))
  } catch (err) {
    rethrowAs(err, asMessageError)
  }
}

/** The body of a result, as its envelope carries it. */
function bodyMap (body: ResultBody): Record<string, unknown> {
  const { id, peerId, name, lamport, time, status, root, stats, problems, problemCount, error } = body
  return clean({ id, peerId, name, lamport, time, status, root, stats, problems, problemCount, error })
}

/** The envelope of a result held in memory. */
export function resultEnvelope (r: SignedResult): Envelope<'result'> {
  return { type: 'result', body: bodyMap(r), signer: r.signer, sig: r.sig }
}

/** The dag-cbor bytes of a result's envelope, as gossip and records carry it. */
export function encodeResult (r: SignedResult): Uint8Array {
  return encodeEnvelope(resultEnvelope(r))
}

/** The exact bytes a result's signature covers, for the peer its body names (see src/envelope). */
export function resultPayload (body: ResultBody): Uint8Array {
  return signedBytes('result', body.peerId, bodyMap(body))
}

/** a capture figure as the wire carries it: a non-negative safe integer */
function figure (n: unknown): number {
  const v = typeof n === 'number' && Number.isFinite(n) ? Math.round(n) : 0
  return Math.min(Math.max(v, 0), Number.MAX_SAFE_INTEGER)
}

function bodyOnly (body: ResultBody): ResultBody {
  return clean({
    id: body.id,
    peerId: body.peerId,
    name: clip(body.name, MAX_NAME_LENGTH),
    lamport: body.lamport,
    time: body.time,
    status: body.status,
    root: body.root,
    stats: body.stats == null ? undefined : Object.fromEntries(STAT_FIELDS.map(k => [k, figure(body.stats?.[k])])) as unknown as ResultStats,
    problems: body.problems,
    problemCount: body.problemCount,
    error: body.error == null ? undefined : clip(body.error, MAX_ERROR_LENGTH)
  })
}

const placeholderSig = new Uint8Array(64)

/** the size of the result's envelope once signed: signer and signature have fixed lengths */
function sizeOf (body: ResultBody): number {
  return encodeEnvelope({ type: 'result', body: bodyMap(body), signer: body.peerId, sig: placeholderSig }).length
}

/**
 * Shortens a result so that, signed, it fits in `maxBytes`: over-long strings are clipped, and the
 * problem list is cut to the most that fit, with `problemCount` keeping the full count.
 */
export function fitResult (body: ResultBody, maxBytes = MAX_MESSAGE_BYTES): ResultBody {
  const b = bodyOnly(body)
  const all = b.problems ?? []
  const total = Math.max(b.problemCount ?? 0, all.length)
  const problems = all.map(p => ({ source: clip(p.source, MAX_PROBLEM_SOURCE), path: clip(p.path, MAX_PROBLEM_PATH), message: clip(p.message, MAX_PROBLEM_MESSAGE) }))
  const withFirst = (k: number): ResultBody => clean({ ...b, problems: b.problems == null ? undefined : problems.slice(0, k), problemCount: k < total || b.problemCount != null ? total : undefined })
  const limit = Math.min(problems.length, MAX_PROBLEMS)
  if (sizeOf(withFirst(limit)) <= maxBytes) return withFirst(limit)
  let lo = 0
  let hi = limit
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (sizeOf(withFirst(mid)) <= maxBytes) lo = mid
    else hi = mid - 1
  }
  const fitted = withFirst(lo)
  const size = sizeOf(fitted)
  if (size > maxBytes) throw new MessageTooLargeError(`result for snapshot ${b.id.slice(0, 8)} is ${size} bytes even without problems, over the limit of ${maxBytes}`)
  return fitted
}

/**
 * Signs a result with the peer's own key, so anyone can check it later from the peer ID alone.
 * The result is first fitted to `maxBytes`, and checked as receivers will check it.
 */
export async function signResult (privateKey: PrivateKey, body: ResultBody, options: { maxBytes?: number } = {}): Promise<SignedResult> {
  const b = fitResult(body, Math.min(options.maxBytes ?? MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES))
  return decodeResultObject(await sealEnvelope(privateKey, 'result', bodyMap(b)))
}

/**
 * Checks that a result is signed by the key of the peer it names, as a result; throws
 * InvalidSignatureError.
 */
export async function verifyResult (r: SignedResult): Promise<void> {
  try {
    await verifyEnvelope(resultEnvelope(r), { where: `result for snapshot ${String(r.id).slice(0, 8)}` })
  } catch (err) {
    rethrowAs(err, e => new InvalidSignatureError(e.message, { cause: e }))
  }
}
