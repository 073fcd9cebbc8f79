// Where a block's copies live: rendezvous (highest-random-weight) hashing of the block's CID over
// the members' peer IDs. A pure function: every agent that knows the same members computes the same
// holders, and a change of membership moves only the copies it must.
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'

/** The weight of `peer` for `cid`: the first 8 bytes of sha256(cid bytes ‖ peer ID), big-endian. */
export function weight (cid: CID | Uint8Array, peer: string): bigint {
  const bytes = cid instanceof Uint8Array ? cid : cid.bytes
  return createHash('sha256').update(bytes).update(peer).digest().readBigUInt64BE(0)
}

/**
 * The peers that hold copies of a block: the owner (which keeps its own copy) and the `copies - 1`
 * other members with the highest weight for the block. Ties (which need a sha256 collision on 64
 * bits) fall to the smaller peer ID so the order is total.
 */
export function holders (cid: CID | Uint8Array, owner: string, members: Iterable<string>, copies: number): string[] {
  if (!Number.isInteger(copies) || copies < 1) throw new RangeError(`copies must be a whole number of at least 1, got ${copies}`)
  const others = [...new Set(members)].filter(m => m !== owner)
  const ranked = others
    .map(peer => ({ peer, w: weight(cid, peer) }))
    .sort((a, b) => a.w === b.w ? (a.peer < b.peer ? -1 : 1) : a.w > b.w ? -1 : 1)
  return [owner, ...ranked.slice(0, copies - 1).map(r => r.peer)]
}

/** adds `value` to the list kept under `key`, in place */
export function appendTo<K, V> (lists: Map<K, V[]>, key: K, value: V): void {
  const list = lists.get(key)
  if (list == null) lists.set(key, [value])
  else list.push(value)
}

/** the smallest of `counts`, 0 when there are none; a loop, so any number of counts will do */
export function fewest (counts: Iterable<number>): number {
  let min: number | undefined
  for (const n of counts) if (min == null || n < min) min = n
  return min ?? 0
}
