// Membership certificates: a cluster admin's signed statement that one host's peer ID is a member,
// under a name, from a time and until an optional expiry. An admin key is an Ed25519 key of its
// own, kept off the hosts; the cluster knows an admin by the peer-ID form of its public key (the
// "admin ID", 12D3KooW...), which is what `cluster.admins` lists. A certificate is a signed
// envelope of kind `member` whose signer is the admin ID, so the one envelope path checks it.
import fs from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { EnvelopeError, encodeEnvelope, openEnvelope, peerIdProblem, sealEnvelope, toSigned, type Signed } from '../envelope/index.js'
import { AdminKeyError, InvalidCertificateError } from './errors.js'

export { AdminKeyError, InvalidCertificateError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

const MAX_NAME = 256
const FIELDS = new Set(['peerId', 'name', 'issuedAt', 'expiresAt'])

export interface CertificateBody {
  /** the member's peer ID */
  peerId: string
  /** the member's host name, as `snapmesh members` shows it */
  name: string
  /** ms since the epoch */
  issuedAt: number
  /** ms since the epoch; absent: no expiry */
  expiresAt?: number
}

/** A certificate as held in memory: the body's fields, and `signer` the admin ID that signed it. */
export type Certificate = Signed<'member', CertificateBody>

function decodeBody (b: Record<string, unknown>, where: string): CertificateBody {
  for (const k of Object.keys(b)) if (!FIELDS.has(k)) throw new InvalidCertificateError(`${where}: unknown field "${k}"`)
  const problem = peerIdProblem(b.peerId)
  if (problem != null) throw new InvalidCertificateError(`${where}: field "peerId" ${problem}`)
  if (typeof b.name !== 'string' || b.name.length === 0 || b.name.length > MAX_NAME) throw new InvalidCertificateError(`${where}: field "name" must be a string of 1 to ${MAX_NAME} characters`)
  const time = (k: string): number | undefined => {
    const v = b[k]
    if (v === undefined && k === 'expiresAt') return undefined
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new InvalidCertificateError(`${where}: field "${k}" must be a non-negative integer (ms since the epoch)`)
    return v
  }
  const issuedAt = time('issuedAt') as number
  const expiresAt = time('expiresAt')
  if (expiresAt != null && expiresAt <= issuedAt) throw new InvalidCertificateError(`${where}: field "expiresAt" must be after issuedAt`)
  return { peerId: b.peerId as string, name: b.name, issuedAt, ...(expiresAt != null ? { expiresAt } : {}) }
}

/** Signs a certificate with an admin key. */
export async function signCertificate (adminKey: PrivateKey, body: CertificateBody): Promise<Uint8Array> {
  const checked = decodeBody({ ...body }, 'membership certificate')
  return encodeEnvelope(await sealEnvelope(adminKey, 'member', checked))
}

export interface CertificateCheck {
  /** the admin IDs the cluster trusts (`cluster.admins`) */
  admins: readonly string[]
  /** ms since the epoch */
  now: number
  /** the peer that presents it, when known: the certificate must be for that peer */
  peerId?: string
}

/**
 * Decodes and checks a certificate: the envelope's size and fields, its signature, an admin the
 * cluster trusts as its signer, the peer it names and its expiry. Throws InvalidCertificateError
 * naming what is wrong.
 */
export async function verifyCertificate (bytes: Uint8Array, check: CertificateCheck): Promise<Certificate> {
  let cert: Certificate
  try {
    cert = toSigned(await openEnvelope(bytes, 'member', decodeBody, { where: 'membership certificate', label: (b) => `membership certificate of ${b.name} (${b.peerId})` }))
  } catch (err: any) {
    if (err instanceof EnvelopeError) throw new InvalidCertificateError(String(err.message), { cause: err })
    throw err
  }
  const what = `membership certificate of ${cert.name} (${cert.peerId})`
  if (!check.admins.includes(cert.signer)) throw new InvalidCertificateError(`${what} is signed by ${cert.signer}, which is not an admin of this cluster`)
  if (check.peerId != null && cert.peerId !== check.peerId) throw new InvalidCertificateError(`${what} was presented by ${check.peerId}`)
  if (cert.expiresAt != null && cert.expiresAt <= check.now) throw new InvalidCertificateError(`${what} expired at ${new Date(cert.expiresAt).toISOString()}`)
  return cert
}

/** A new admin key: the key itself (to keep off the hosts) and its admin ID (for `cluster.admins`). */
export async function newAdminKey (): Promise<{ key: PrivateKey, adminId: string, bytes: Uint8Array }> {
  const key = await generateKeyPair('Ed25519')
  return { key, adminId: peerIdFromPrivateKey(key).toString(), bytes: privateKeyToProtobuf(key) }
}

/** Reads an admin key file written by `snapmesh cluster init`. */
export async function readAdminKey (file: string): Promise<{ key: PrivateKey, adminId: string }> {
  let bytes: Uint8Array
  try {
    bytes = await fs.readFile(file)
  } catch (err: any) {
    throw new AdminKeyError(`cannot read the admin key ${file}: ${String(err.message)}`)
  }
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (err: any) {
    throw new AdminKeyError(`${file} is not an admin key (a libp2p private key): ${String(err.message)}`)
  }
  if (key.type !== 'Ed25519') throw new AdminKeyError(`${file} holds a ${key.type} key; admin keys are Ed25519`)
  return { key, adminId: peerIdFromPrivateKey(key).toString() }
}
