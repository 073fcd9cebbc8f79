// Restoring a snapshot part into a folder, in three steps: plan (plan.ts) walks the manifest into
// what is to be created, after the checks of check.ts on the target, the selections and every
// name; write (write.ts) creates it.
import { logger } from '@libp2p/logger'
import { CustomProgressEvent } from 'progress-events'
import { readRoot } from '../capture/index.js'
import { checkBound, checkSourceNames, checkTarget, resolveTarget } from './check.js'
import { checkResumable } from './marker.js'
import { OwnerPolicy } from './owners.js'
import { parseIncludes, planRestore, selectSources } from './plan.js'
import { writePlan } from './write.js'
import type { RestoreTotals } from './plan.js'
import type { BlockGetter } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

export { InvalidIncludeError, InvalidTargetError, ManifestExceedsStatsError, ResumeMismatchError, TargetNotEmptyError, UnsafePathError } from './errors.js'
export { isSafeName } from './check.js'
export { MARKER_NAME } from './marker.js'
export type { RestoreMarker } from './marker.js'
export type { RestoreTotals } from './plan.js'

const log = logger('snapmesh:restore')

export interface RestoreStats extends RestoreTotals {
  /** files kept from an interrupted restore (with `resume`), counted in `files` and `bytes` too */
  filesKept?: number
  durationMs: number
}

export type RestoreProgressEvents =
  | ProgressEvent<'restore:start', RestoreTotals>
  | ProgressEvent<'restore:file', { path: string, bytes: number }>

export interface RestoreComponents {
  blocks: BlockGetter
  /** the restoring process's user ID; default process.getuid (owners are applied only as root) */
  getuid?: () => number | undefined
}

export interface RestoreInit {
  root: CID
  /** absolute folder; each source is restored to `<target>/<source name>` */
  target: string
  /**
   * `<source>` or `<source>/<relative path>` selections; a folder selects everything below it.
   * Default: every source. Each must match something in the snapshot.
   */
  include?: string[]
  /**
   * Allow a target that already has content. Folders in the way are merged into, files and
   * symlinks in the way are replaced, anything the snapshot does not name is left alone; a
   * symlink where the snapshot has a folder is still refused. Default false: the target must be
   * missing or an empty folder.
   */
  overwrite?: boolean
  /**
   * Continue an interrupted restore into the same target (implies overwrite): a file already in
   * place with the snapshot's size, mode and mtime is kept without fetching it again. Files are
   * only renamed into place after they are complete and their mtime is set, so such a file is whole.
   * A target with content must hold the marker of a restore of the same snapshot, participant and
   * root (see `snapshot`, `peerId`), else ResumeMismatchError.
   */
  resume?: boolean
  /** the snapshot ID, recorded in the target's marker and matched by `resume` */
  snapshot?: string
  /** the participant whose part this is, recorded in the marker and matched by `resume` */
  peerId?: string
  /**
   * The most the manifest may expand to (the participant's capture stats): a plan with more
   * files, folders, symlinks or bytes is refused with ManifestExceedsStatsError before anything is
   * written. Default: no bound (the caller trusts the manifest).
   */
  bound?: RestoreTotals
  /** how the bound is named in the refusal; default "its record states" */
  boundName?: string
  /** keep setuid, setgid and sticky bits; setuid and setgid still only where the owner was applied */
  keepSpecialBits?: boolean
  /** do not apply the recorded owners, even as root (as any other user they never are) */
  noOwner?: boolean
}

/**
 * Turns a manifest back into files under `<target>/<source name>/`.
 *
 * Safety, whose checks all live in check.ts: before anything is written, the whole selected tree
 * is read (each folder page fetched once) and checked, and one entry whose name is not a single safe component (or a source name
 * that is not) refuses the entire restore with UnsafePathError naming the path, with nothing
 * written. While writing, every folder is checked before anything is put in it: it must be a real
 * folder (not a symlink) whose real path is exactly where it belongs under the target's real path;
 * otherwise the restore stops with UnsafePathError. Nothing is ever created outside the target.
 *
 * Files are written to a temporary name in their final folder, fsynced, given their mode and
 * mtime and renamed into place; symlinks are made the same way; folder modes and mtimes are set
 * after their children, deepest first. Mtimes come back to the microsecond. Every block comes
 * through `components.blocks` and is verified against its CID again here. A failure while writing
 * (a missing or corrupt block, say) leaves what was already restored in place.
 *
 * A manifest is another host's word: with `bound`, one that expands to more than its record states
 * is refused before anything is written (a DAG sharing subtrees can otherwise expand without
 * end); setuid, setgid and sticky bits come back only with `keepSpecialBits`, and setuid and
 * setgid never on an entry whose owner was not applied (owners.ts). A marker at the target's top
 * (marker.ts) names the restore under way, so `resume` continues only that one.
 */
export async function restore (components: RestoreComponents, init: RestoreInit, options: AbortOptions & ProgressOptions<RestoreProgressEvents> = {}): Promise<RestoreStats> {
  const started = Date.now()
  const { blocks } = components
  const target = resolveTarget(init.target)
  const selections = parseIncludes(init.include)
  const root = await readRoot(blocks, init.root, options)
  checkSourceNames(root)
  const wanted = selectSources(root, selections)
  const overwrite = init.overwrite === true || init.resume === true
  await checkTarget(target, overwrite, options)
  const marker = { root: init.root.toString(), ...(init.snapshot != null ? { snapshot: init.snapshot } : {}), ...(init.peerId != null ? { peerId: init.peerId } : {}) }
  if (init.resume === true) await checkResumable(target, marker, options)

  const plan = await planRestore(blocks, wanted, selections, options)
  checkBound(plan.totals, init.bound, marker.root, init.boundName)
  const owners = await OwnerPolicy.create(init, components.getuid != null ? components.getuid() : process.getuid?.())
  options.onProgress?.(new CustomProgressEvent('restore:start', { ...plan.totals }))

  const stats = await writePlan(blocks, plan, target, { overwrite, resume: init.resume === true, owners, marker }, options)
  stats.durationMs = Date.now() - started
  log('restored %d files, %d folders, %d symlinks (%d bytes) from %s to %s', stats.files, stats.dirs, stats.symlinks, stats.bytes, init.root, target)
  return stats
}
