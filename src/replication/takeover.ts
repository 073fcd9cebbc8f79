// Taking over a gone owner's part of a snapshot: the member chosen for it gathers every block of
// the part (verified, from whichever holders are up), keeps them, and offers each block to the live
// holders placement gives without the owner, so the part is back to its wanted copies.
import { logger } from '@libp2p/logger'
import PQueue from 'p-queue'
import { manifestBlocks } from '../capture/index.js'
import { appendTo, fewest, holders as place, weight } from './placement.js'
import type { BlockGetter, Blocks } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

const log = logger('snapmesh:replication:takeover')

/**
 * Where one owner's blocks should be: with the owner alive, the owner and the `copies - 1` best
 * placed other members; with the owner gone, the `copies` best placed live members. `live` holds
 * the members reachable now, whether or not it names the owner.
 */
export function placementFor (owner: string, live: readonly string[], copies: number): (cid: CID) => string[] {
  if (live.includes(owner)) return (cid) => place(cid, owner, live, copies)
  return (cid) => place(cid, owner, live, copies + 1).slice(1)
}

/**
 * The live member that takes over a gone owner's part with manifest `root`: the one of highest
 * rendezvous weight for the root, so every agent with the same view of membership picks the same
 * one and a departure does not set the whole cluster copying the same part.
 */
export function takerFor (root: CID, live: readonly string[]): string | undefined {
  let best: { peer: string, w: bigint } | undefined
  for (const peer of new Set(live)) {
    const w = weight(root, peer)
    if (best == null || w > best.w || (w === best.w && peer < best.peer)) best = { peer, w }
  }
  return best?.peer
}

export interface TakeOverComponents {
  blocks: Pick<Blocks, 'has' | 'get' | 'put'>
  /** finds blocks this agent lacks at other holders, verifying each */
  getter: BlockGetter
  /** offers blocks this agent holds to a holder; resolves to the ones it confirmed */
  offer: (holder: string, cids: CID[], options: AbortOptions) => Promise<CID[]>
}

export interface TakeOverInit {
  root: CID
  /** this agent's peer ID */
  self: string
  /** the holders each block should have (see placementFor) */
  placement: (cid: CID) => string[]
  /** holders offered to at once */
  concurrency?: number
}

export interface TakeOverReport {
  blocks: number
  /** the fewest confirmed copies any block has, this agent's own counted */
  copies: number
  /** every peer that confirmed blocks, this agent included */
  holders: string[]
  failures: string[]
}

/** Gathers the part locally, then pushes each placed holder its share. */
export async function takeOver (components: TakeOverComponents, init: TakeOverInit, options: AbortOptions = {}): Promise<TakeOverReport> {
  const { blocks, getter } = components
  // manifest nodes are read through here, so they land in the local store like the chunks
  const keeping: BlockGetter = {
    get: async (cid, opts) => {
      if (await blocks.has(cid, opts)) return blocks.get(cid, opts)
      const bytes = await getter.get(cid, opts)
      await blocks.put(cid, bytes, opts)
      return bytes
    }
  }
  const perHolder = new Map<string, CID[]>()
  const confirmed = new Map<string, number>()
  for await (const { cid } of manifestBlocks(keeping, init.root, options)) {
    if (!(await blocks.has(cid, options))) await blocks.put(cid, await getter.get(cid, options), options)
    confirmed.set(cid.toString(), 1)
    for (const h of init.placement(cid)) {
      if (h !== init.self) appendTo(perHolder, h, cid)
    }
  }
  const failures: string[] = []
  const holders = new Set([init.self])
  const queue = new PQueue({ concurrency: init.concurrency ?? 4 })
  await Promise.all([...perHolder.entries()].map(async ([holder, cids]) => queue.add(async () => {
    try {
      const ok = await components.offer(holder, cids, options)
      if (ok.length > 0) holders.add(holder)
      for (const cid of ok) confirmed.set(cid.toString(), (confirmed.get(cid.toString()) ?? 1) + 1)
    } catch (err: any) {
      log('offer to %s failed: %s', holder, err.message)
      failures.push(`${holder}: ${String(err.message)}`)
    }
  })))
  return { blocks: confirmed.size, copies: fewest(confirmed.values()), holders: [...holders].sort(), failures }
}
