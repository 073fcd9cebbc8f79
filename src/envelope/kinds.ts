// The kinds of signed envelope. Adding a kind is one entry here: its type name (which is part of
// every signature of that kind, see signedBytes), the largest envelope of it accepted from a peer,
// and, when its body names the peer that signs it, that field. The body's own format and checks
// stay with the code that owns the kind, which passes them to readEnvelope / openEnvelope.

export interface KindSpec {
  /** what the kind is called in error messages */
  readonly name: string
  /** largest encoded envelope of this kind accepted from a peer, in bytes */
  readonly maxBytes: number
  /**
   * the body field that names the signer, when the body names it: an envelope whose signer is
   * another peer than that field names does not verify
   */
  readonly signerField?: string
  /** how error messages call the peer in `signerField` ("claims peer ...") */
  readonly signerRole?: string
}

export const KINDS = {
  /** a participant's signed result for one snapshot (src/wire/result.ts); one gossip message */
  result: { name: 'result', maxBytes: 256 * 1024, signerField: 'peerId', signerRole: 'peer' },
  /** an agent's signed list of the snapshots it knows, stored in the DHT (src/metadata/dht.ts) */
  head: { name: 'head', maxBytes: 256 * 1024, signerField: 'peerId', signerRole: 'peer' },
  /** how many confirmed copies one participant's data has (src/metadata/copies.ts) */
  copies: { name: 'copy report', maxBytes: 64 * 1024, signerField: 'reporter', signerRole: 'reporter' },
  /** a member's statement that a snapshot is to be forgotten (src/metadata/forget.ts) */
  forget: { name: 'forget notice', maxBytes: 1024, signerField: 'by', signerRole: 'member' },
  /** one entry of a host's tamper-evident audit log, signed by the host (src/audit/entry.ts) */
  audit: { name: 'audit entry', maxBytes: 256 * 1024 },
  /** a host's audit log position (sequence number and hash of its last entry), gossiped (src/audit/heads.ts) */
  'audit-head': { name: 'audit head', maxBytes: 1024, signerField: 'peerId', signerRole: 'peer' },
  /** a cluster admin's statement that a host's peer ID is a member, under a name, until a time (src/membership/certificate.ts) */
  member: { name: 'membership certificate', maxBytes: 4096 }
} as const satisfies Record<string, KindSpec>

/** The type name of a registered kind: the `type` field of its envelopes. */
export type Kind = keyof typeof KINDS

export function isKind (v: unknown): v is Kind {
  return typeof v === 'string' && Object.hasOwn(KINDS, v)
}

/** The registry entry of a kind, for code that handles any kind; throws TypeError for an unregistered one. */
export function kindSpec (kind: Kind): KindSpec {
  if (!isKind(kind)) throw new TypeError(`${JSON.stringify(kind) ?? String(kind)} is not a registered kind of signed envelope (see src/envelope/kinds.ts)`)
  return KINDS[kind]
}
