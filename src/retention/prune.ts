// Pruning: deleting the blocks no kept snapshot needs. Mark, then sweep: every manifest root this
// agent must keep is walked (its manifest nodes read locally or from the members, each one
// verified), and only then is any block deleted. A root that cannot be walked stops the prune
// before the sweep, so a block is never deleted on incomplete knowledge.
import { logger } from '@libp2p/logger'
import { CustomProgressEvent } from 'progress-events'
import { manifestBlocks } from '../capture/index.js'
import { PruneAbortedError } from './errors.js'
import type { BlockGetter } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

const log = logger('snapmesh:retention')

export interface PruneComponents {
  blocks: {
    cids: (options?: AbortOptions) => AsyncIterable<CID>
    info: (cid: CID, options?: AbortOptions) => Promise<{ size: number, mtimeMs: number } | undefined>
    delete: (cid: CID, options?: AbortOptions) => Promise<void>
  }
  /** where the manifest nodes of one owner's part are read from (the local store first) */
  getterFor: (owner: string) => Promise<BlockGetter>
}

/** a manifest root to keep: one participant's part of a kept snapshot, or this agent's incremental base */
export interface KeptRoot {
  /** the snapshot it belongs to, for error messages; absent for the incremental base */
  snapshot?: string
  owner: string
  root: CID
}

export interface PruneInit {
  roots: KeptRoot[]
  /** blocks whose file is younger than this are kept: a capture or a replica may still be on its way to a record */
  graceMs: number
  /** ms since the epoch */
  now: number
  /** count what would be deleted, delete nothing */
  dryRun?: boolean
}

export interface PruneStats {
  /** manifest roots walked */
  roots: number
  /** distinct blocks the kept roots reach */
  referenced: number
  /** blocks in the store before the sweep */
  stored: number
  /** unreferenced blocks deleted (or, in a dry run, that would be) */
  deleted: number
  bytesFreed: number
  /** unreferenced blocks kept because they are younger than the grace period */
  young: number
  dryRun: boolean
  durationMs: number
}

export type PruneProgressEvents =
  ProgressEvent<'prune:mark', { roots: number, of: number, referenced: number }> |
  ProgressEvent<'prune:sweep', { seen: number, deleted: number, bytesFreed: number }>

export async function prune (components: PruneComponents, init: PruneInit, options: AbortOptions & ProgressOptions<PruneProgressEvents> = {}): Promise<PruneStats> {
  const started = Date.now()
  const referenced = new Set<string>()
  let walked = 0
  for (const kept of init.roots) {
    options.signal?.throwIfAborted()
    const getter = await components.getterFor(kept.owner)
    try {
      for await (const { cid } of manifestBlocks(getter, kept.root, options)) referenced.add(cid.toString())
    } catch (err: any) {
      if (options.signal?.aborted === true) throw err
      const what = kept.snapshot != null ? `snapshot ${kept.snapshot.slice(0, 8)}, part of ${kept.owner}` : `the incremental base of ${kept.owner}`
      throw new PruneAbortedError(`prune stopped before deleting anything: the manifest of ${what} (root ${kept.root.toString()}) cannot be read: ${String(err.message)}`)
    }
    walked++
    options.onProgress?.(new CustomProgressEvent('prune:mark', { roots: walked, of: init.roots.length, referenced: referenced.size }))
  }

  let stored = 0
  let deleted = 0
  let bytesFreed = 0
  let young = 0
  for await (const cid of components.blocks.cids(options)) {
    stored++
    if (referenced.has(cid.toString())) continue
    const info = await components.blocks.info(cid, options)
    if (info == null) continue
    if (init.now - info.mtimeMs < init.graceMs) {
      young++
      continue
    }
    if (init.dryRun !== true) await components.blocks.delete(cid, options)
    deleted++
    bytesFreed += info.size
    if (deleted % 256 === 0) options.onProgress?.(new CustomProgressEvent('prune:sweep', { seen: stored, deleted, bytesFreed }))
  }
  options.onProgress?.(new CustomProgressEvent('prune:sweep', { seen: stored, deleted, bytesFreed }))
  const stats: PruneStats = { roots: walked, referenced: referenced.size, stored, deleted, bytesFreed, young, dryRun: init.dryRun === true, durationMs: Date.now() - started }
  log('pruned %d of %d blocks (%d bytes), %d kept as young, %d referenced by %d roots', deleted, stored, bytesFreed, young, referenced.size, walked)
  return stats
}
