import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RAW, cidForBytes } from '../../src/store/index.js'
import type { Marker, ResultBody } from '../../src/snapshot/index.js'
import type { PrivateKey } from '@libp2p/interface'

export interface Peer { key: PrivateKey, id: string }

export async function peer (): Promise<Peer> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

export async function peers (n: number): Promise<Peer[]> {
  return Promise.all(Array.from({ length: n }, async () => peer()))
}

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from its seed */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function shuffle<T> (items: T[], seed: number): T[] {
  const rnd = prng(seed)
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    const held = out[i]
    out[i] = out[j]
    out[j] = held
  }
  return out
}

export function seededBytes (seed: number): (n: number) => Uint8Array {
  const rnd = prng(seed)
  return (n) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256))
}

let counter = 0
/** a distinct, valid snapshot ID */
export function someId (): string {
  counter++
  return counter.toString(16).padStart(8, '0').repeat(8)
}

export function marker (initiator: string, expected: string[], over: Partial<Marker> = {}): Marker {
  return { v: 1, type: 'marker', id: someId(), initiator, lamport: 1, startedAt: 1000, deadline: 61_000, expected: [...new Set(expected)].sort(), consistency: 'marker', ...over }
}

export function root (n: number): ReturnType<typeof cidForBytes> {
  return cidForBytes(new Uint8Array([n & 0xff, n >> 8]), RAW)
}

export function okBody (m: Marker, p: Peer, over: Partial<ResultBody> = {}): ResultBody {
  return { id: m.id, peerId: p.id, name: `host-${p.id.slice(-4)}`, lamport: 2, time: 2000, status: 'ok', root: root(1), ...over }
}

export function errorBody (m: Marker, p: Peer, error: string, over: Partial<ResultBody> = {}): ResultBody {
  return { id: m.id, peerId: p.id, name: `host-${p.id.slice(-4)}`, lamport: 2, time: 2000, status: 'error', error, ...over }
}
