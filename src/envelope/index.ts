// Signed envelopes: the one format of everything an agent signs (results, heads, copy reports,
// forget notices, and the kinds registered after them in kinds.ts).
//
// On the wire an envelope is the dag-cbor map
//
//   { type: <kind>, body: <map>, signer: <Ed25519 peer ID string>, sig: <64 bytes> }
//
// and `sig` is the Ed25519 signature, by the key `signer` names, of the bytes
//
//   dag-cbor( [ "snapmesh/signed/v1", <kind>, <signer>, <body> ] )
//
// that is: a four-element CBOR array of the domain string, the kind's type name, the signer's peer
// ID string and the body map, in dag-cbor's canonical form. The domain string names the signing
// format and its version and the second element the kind, so a signature made for one kind never
// verifies as another, nor under a later version of the format.
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { describe, isMap, peerIdProblem } from './checks.js'
import { EnvelopeError, EnvelopeSignatureError, EnvelopeTooLargeError, MalformedEnvelopeError, WrongEnvelopeTypeError } from './errors.js'
import { KINDS, isKind, kindSpec, type Kind, type KindSpec } from './kinds.js'
import type { PrivateKey } from '@libp2p/interface'

export * from './errors.js'
export * from './kinds.js'
export { describe, isMap, peerIdProblem } from './checks.js'

/** The first element of every signed array: the signing format and its version. */
export const SIGNING_DOMAIN = 'snapmesh/signed/v1'
/** The version of the signing format, as in-memory signed objects carry it in `v`. */
export const SIGNING_VERSION = 1
/** Length of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64

const ENVELOPE_FIELDS: ReadonlySet<string> = new Set(['type', 'body', 'signer', 'sig'])
/** fields of the in-memory form that are the envelope's, so no body may have them */
const RESERVED: readonly string[] = ['v', 'type', 'signer', 'sig']

/** A signed envelope, as it travels. `body` is the kind's own map. */
export interface Envelope<K extends Kind = Kind, B = Record<string, unknown>> {
  type: K
  body: B
  /** the peer ID of the key that signed */
  signer: string
  /** Ed25519 signature of signedBytes(type, signer, body) */
  sig: Uint8Array
}

/**
 * The in-memory form of an opened envelope: the body's fields side by side with the signing
 * format's version, the kind, the signer and the signature. See toSigned.
 */
export type Signed<K extends Kind, B> = B & { v: 1, type: K, signer: string, sig: Uint8Array }

/** Checks a body map field by field and returns it as the kind holds it; throws on anything wrong. */
export type BodyDecoder<B> = (body: Record<string, unknown>, where: string) => B

export interface ReadOptions {
  /** names the envelope in error messages ("forget notice", "snapshot record: results[2]"); default the kind's name */
  where?: string
}

export interface OpenOptions<B = unknown> extends ReadOptions {
  /** a lower size limit than the kind's, for bytes */
  maxBytes?: number
  /** names the envelope in signature errors once its body is known ("forget notice for snapshot 1a2b3c4d"); default `where` */
  label?: (body: B) => string
}

/** The exact bytes an envelope's signature covers. */
export function signedBytes (type: Kind, signer: string, body: unknown): Uint8Array {
  if (!isKind(type)) throw new TypeError(`cannot sign or verify an envelope of unregistered kind ${describe(type)}`)
  return dagCbor.encode([SIGNING_DOMAIN, type, signer, body])
}

/**
 * Signs a body as an envelope of `type` with `privateKey`; the signer is the key's own peer ID.
 * The body must be a dag-cbor map without undefined fields.
 */
export async function sealEnvelope<K extends Kind, B extends object> (privateKey: PrivateKey, type: K, body: B): Promise<Envelope<K, B>> {
  if (!isMap(body)) throw new TypeError(`the body of a ${kindSpec(type).name} must be a map, got ${describe(body)}`)
  const signer = peerIdFromPrivateKey(privateKey).toString()
  const sig = await privateKey.sign(signedBytes(type, signer, body))
  return { type, body, signer, sig }
}

/** The dag-cbor bytes of an envelope. */
export function encodeEnvelope (env: Envelope<Kind, unknown>): Uint8Array {
  return dagCbor.encode({ type: env.type, body: env.body, signer: env.signer, sig: env.sig })
}

/**
 * Decodes envelope bytes of `type` to a value, refusing more bytes than the kind allows (or
 * `maxBytes`, when lower) before decoding. Throws EnvelopeTooLargeError or MalformedEnvelopeError.
 */
export function decodeEnvelopeBytes (bytes: Uint8Array, type: Kind, options: { where?: string, maxBytes?: number } = {}): unknown {
  const spec = kindSpec(type)
  const where = options.where ?? spec.name
  const limit = Math.min(options.maxBytes ?? spec.maxBytes, spec.maxBytes)
  if (bytes.length > limit) throw new EnvelopeTooLargeError(`${where} of ${bytes.length} bytes exceeds the limit of ${limit}`)
  try {
    return dagCbor.decode(bytes)
  } catch (err: any) {
    throw new MalformedEnvelopeError(`${where} is not dag-cbor: ${String(err.message)}`)
  }
}

/** the signer and signature fields: a valid Ed25519 peer ID and 64 bytes */
function checkSignerFields (signer: unknown, sig: unknown, where: string): asserts signer is string {
  const problem = peerIdProblem(signer)
  if (problem != null) throw new MalformedEnvelopeError(`${where}: field "signer" ${problem}`, { field: 'signer' })
  if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_BYTES) throw new MalformedEnvelopeError(`${where}: field "sig" must be a ${SIGNATURE_BYTES}-byte signature, got ${describe(sig)}`, { field: 'sig' })
}

/** the checks of readEnvelope; also hands back the body exactly as it came, which is what was signed */
function check<K extends Kind, B> (value: unknown, type: K, decodeBody: BodyDecoder<B>, where: string): { envelope: Envelope<K, B>, raw: Record<string, unknown> } {
  if (!isMap(value)) throw new MalformedEnvelopeError(`${where} must be a map of type, body, signer and sig, got ${describe(value)}`)
  for (const k of Object.keys(value)) {
    if (!ENVELOPE_FIELDS.has(k)) throw new MalformedEnvelopeError(`${where}: unknown field "${k}" in the envelope, which holds only type, body, signer and sig`, { field: k })
  }
  if (value.type !== type) {
    const other = isKind(value.type) ? ` (a ${KINDS[value.type].name})` : ''
    throw new WrongEnvelopeTypeError(`${where}: field "type" must be "${type}", got ${describe(value.type)}${other}`, { field: 'type' })
  }
  const { signer, sig } = value
  checkSignerFields(signer, sig, where)
  const raw = value.body
  if (!isMap(raw)) throw new MalformedEnvelopeError(`${where}: field "body" must be a map, got ${describe(raw)}`, { field: 'body' })
  const body = decodeBody(raw, where)
  return { envelope: { type, body, signer, sig: sig as Uint8Array }, raw }
}

/**
 * Checks a decoded value as an envelope of `type`: exactly the fields type, body, signer and sig;
 * the type asked for; a signer that is a valid Ed25519 peer ID; a 64-byte signature; a body that
 * `decodeBody` accepts. Does not check the signature: see verifyEnvelope and openEnvelope.
 * Throws WrongEnvelopeTypeError or MalformedEnvelopeError, or what `decodeBody` throws.
 */
export function readEnvelope<K extends Kind, B> (value: unknown, type: K, decodeBody: BodyDecoder<B>, options: ReadOptions = {}): Envelope<K, B> {
  return check(value, type, decodeBody, options.where ?? kindSpec(type).name).envelope
}

/**
 * Checks that an envelope is signed by the key its signer names, for its kind: the body's signer
 * field (when the kind has one) must name the signer, and the signature must verify over
 * signedBytes. `env.body` must be the body as it travels. Throws EnvelopeSignatureError, or
 * MalformedEnvelopeError for a signer or signature field that could never verify.
 */
export async function verifyEnvelope (env: Envelope<Kind, unknown>, options: ReadOptions = {}): Promise<void> {
  const spec: KindSpec = kindSpec(env.type)
  const where = options.where ?? spec.name
  checkSignerFields(env.signer, env.sig, where)
  const role = spec.signerRole ?? 'signer'
  if (spec.signerField != null) {
    const claimed = isMap(env.body) ? env.body[spec.signerField] : undefined
    if (claimed !== env.signer) {
      throw new EnvelopeSignatureError(`${where} claims ${role} ${typeof claimed === 'string' ? claimed : describe(claimed)} but is not signed by its key: the envelope's signer is ${env.signer}`)
    }
  }
  let ok: boolean
  try {
    const key = peerIdFromString(env.signer).publicKey
    if (key == null) throw new Error('the peer ID carries no public key')
    ok = await key.verify(signedBytes(env.type, env.signer, env.body), env.sig)
  } catch (err: any) {
    throw new EnvelopeSignatureError(`${where} from ${env.signer}: cannot check its signature: ${String(err.message)}`, { cause: err })
  }
  if (!ok) throw new EnvelopeSignatureError(`${where} claims ${role} ${env.signer} but is not signed by its key`)
}

/**
 * The one path from bytes (or an already decoded value) to a checked, verified envelope: bounds
 * the size, checks the fields as readEnvelope does, then the signature as verifyEnvelope does.
 */
export async function openEnvelope<K extends Kind, B> (input: Uint8Array | unknown, type: K, decodeBody: BodyDecoder<B>, options: OpenOptions<B> = {}): Promise<Envelope<K, B>> {
  const where = options.where ?? kindSpec(type).name
  const value = input instanceof Uint8Array ? decodeEnvelopeBytes(input, type, options) : input
  const { envelope, raw } = check(value, type, decodeBody, where)
  const label = options.label?.(envelope.body) ?? where
  await verifyEnvelope({ type, body: raw, signer: envelope.signer, sig: envelope.sig }, { where: label })
  return envelope
}

/** The in-memory form of an envelope: its body's fields, with v, type, signer and sig beside them. */
export function toSigned<K extends Kind, B extends object> (env: Envelope<K, B>): Signed<K, B> {
  for (const k of RESERVED) {
    if (Object.hasOwn(env.body, k)) throw new TypeError(`a ${kindSpec(env.type).name} body cannot have a field "${k}": the envelope's fields share its in-memory form`)
  }
  return { ...env.body, v: SIGNING_VERSION, type: env.type, signer: env.signer, sig: env.sig } as Signed<K, B>
}

/**
 * For code whose callers expect errors of its own: throws what `as` makes of an EnvelopeError
 * (which should keep it as its cause), and any other error unchanged.
 */
export function rethrowAs (err: unknown, as: (e: EnvelopeError) => Error): never {
  throw err instanceof EnvelopeError ? as(err) : err
}
