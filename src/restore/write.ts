// Writing a planned restore: folders, files and symlinks under the target, each folder checked
// before anything is put in it; files streamed chunk by chunk to a temporary name, fsynced and
// renamed into place; files kept from an interrupted restore with `resume`.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import PQueue from 'p-queue'
import { CustomProgressEvent } from 'progress-events'
import { InvalidManifestError, readChunks } from '../capture/index.js'
import { syncDir, verifyBlock } from '../store/index.js'
import { assertInside, inTheWayOfDir, isRestored, isSafeName, lstatOrUndefined, shownPath } from './check.js'
import { InvalidTargetError, UnsafePathError } from './errors.js'
import { removeMarker, writeMarker } from './marker.js'
import { applyOwner } from './owners.js'
import type { RestoreMarker } from './marker.js'
import type { OwnerPolicy, Ownership } from './owners.js'
import type { RestoreProgressEvents, RestoreStats } from './index.js'
import type { PlannedContents, RestorePlan } from './plan.js'
import type { FileEntry, OwnerFields, SymlinkEntry } from '../capture/index.js'
import type { BlockGetter } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { ProgressOptions } from 'progress-events'

const log = logger('snapmesh:restore')

/** chunks fetched ahead of the one being written, per file */
const PREFETCH = 4
/** files up to this size are written several at a time (fsync dominates small files) */
const SMALL_FILE = 1024 * 1024
const SMALL_FILE_CONCURRENCY = 8

export interface WriteInit {
  /** folders in the way are merged into, files and symlinks in the way replaced */
  overwrite: boolean
  /** a file already in place from an interrupted restore is kept (see isRestored) */
  resume: boolean
  /** owners and mode bits to give what is restored */
  owners: OwnerPolicy
  /** written at the target's top before the first entry, removed once the restore completed */
  marker: RestoreMarker
}

/** seconds for utimes that land on the microsecond nearest `ms` (utimes keeps microseconds and truncates) */
function utimesSeconds (ms: number): number {
  return (Math.round(ms * 1000) + 0.5) / 1e6
}

function tempName (dir: string): string {
  return path.join(dir, `.snapmesh-${randomBytes(8).toString('hex')}.tmp`)
}

class PlanWriter {
  readonly stats: RestoreStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0, durationMs: 0 }
  private readonly smallFiles = new PQueue({ concurrency: SMALL_FILE_CONCURRENCY })

  constructor (
    private readonly blocks: BlockGetter,
    private readonly targetReal: string,
    private readonly init: WriteInit,
    private readonly options: AbortOptions & ProgressOptions<RestoreProgressEvents>
  ) {}

  /** makes (or, with overwrite, reuses) a folder and checks it */
  async makeDir (abs: string, parts: string[]): Promise<void> {
    try {
      await fs.mkdir(abs, { mode: 0o700 })
    } catch (err: any) {
      if (err.code !== 'EEXIST' || !this.init.overwrite) throw err
      const st = await fs.lstat(abs)
      if (inTheWayOfDir(st, abs, parts) === 'replace') {
        log('replacing %s with a folder', abs)
        await fs.rm(abs)
        await fs.mkdir(abs, { mode: 0o700 })
      } else {
        // make sure the folder can be written into; its recorded mode is set afterwards
        await fs.chmod(abs, (st.mode & 0o7777) | 0o700)
      }
    }
    await assertInside(abs, parts, this.targetReal, this.options)
  }

  async finishDir (abs: string, mode: number | undefined, mtimeMs: number | undefined, owner: OwnerFields): Promise<void> {
    await syncDir(abs)
    const o = this.init.owners.of(owner, mode ?? 0o700)
    const finalMode = await applyOwner(o, async (uid, gid) => fs.chown(abs, uid, gid), err => { this.ownerRefused(abs, err) })
    if (mode != null || o.uid != null || o.gid != null) await fs.chmod(abs, finalMode)
    if (mtimeMs != null) {
      const t = utimesSeconds(mtimeMs)
      await fs.utimes(abs, t, t)
    }
    this.stats.dirs++
  }

  private ownerRefused (abs: string, err: Error): void {
    log('the file system refused the owner of %s (%s): left as created, without setuid or setgid', abs, err.message)
  }

  private async place (tmp: string, abs: string, parts: string[]): Promise<void> {
    try {
      await fs.rename(tmp, abs)
    } catch (err: any) {
      await fs.rm(tmp, { force: true })
      if (err.code === 'EISDIR' || err.code === 'ENOTEMPTY' || err.code === 'EEXIST') throw new InvalidTargetError(`cannot restore ${shownPath(parts)}: a folder is in the way at ${abs}`)
      throw err
    }
  }

  private fileDone (parts: string[], bytes: number): void {
    this.stats.files++
    this.stats.bytes += bytes
    this.options.onProgress?.(new CustomProgressEvent('restore:file', { path: parts.join('/'), bytes }))
  }

  /** streams a file's chunks, a few fetched ahead, to a temporary name, then renames it into place */
  private async writeFile (entry: FileEntry, dirAbs: string, parts: string[]): Promise<void> {
    const { blocks, options } = this
    const abs = path.join(dirAbs, entry.name)
    const o: Ownership = this.init.owners.of(entry, entry.mode)
    if (this.init.resume && isRestored(await lstatOrUndefined(abs, options), entry, o)) {
      this.stats.filesKept = (this.stats.filesKept ?? 0) + 1
      this.fileDone(parts, entry.size)
      return
    }
    const tmp = tempName(dirAbs)
    const handle = await fs.open(tmp, 'wx', 0o600)
    let size = 0
    try {
      const ahead: Array<{ cid: CID, len: number, bytes: Promise<Uint8Array> }> = []
      const fetch = (cid: CID, len: number): void => {
        const bytes = blocks.get(cid, options)
        bytes.catch(() => {})
        ahead.push({ cid, len, bytes })
      }
      const writeNext = async (): Promise<void> => {
        const next = ahead.shift()
        if (next == null) return
        const bytes = await next.bytes
        verifyBlock(next.cid, bytes)
        if (bytes.byteLength !== next.len) throw new InvalidManifestError(`chunk ${next.cid.toString()} of ${shownPath(parts)} has ${bytes.byteLength} bytes, the manifest says ${next.len}`)
        await handle.writeFile(bytes)
        size += bytes.byteLength
      }
      for await (const [cid, len] of readChunks(blocks, entry, options)) {
        options.signal?.throwIfAborted()
        fetch(cid, len)
        if (ahead.length >= PREFETCH) await writeNext()
      }
      while (ahead.length > 0) await writeNext()
      if (size !== entry.size) throw new InvalidManifestError(`${shownPath(parts)} came to ${size} bytes, the manifest says ${entry.size}`)
      await handle.chmod(await applyOwner(o, async (uid, gid) => handle.chown(uid, gid), err => { this.ownerRefused(abs, err) }))
      const t = utimesSeconds(entry.mtimeMs)
      await handle.utimes(t, t)
      await handle.sync()
    } catch (err) {
      await handle.close()
      await fs.rm(tmp, { force: true })
      throw err
    }
    await handle.close()
    await this.place(tmp, abs, parts)
    this.fileDone(parts, size)
  }

  private async writeSymlink (entry: SymlinkEntry, dirAbs: string, parts: string[]): Promise<void> {
    const tmp = tempName(dirAbs)
    await fs.symlink(entry.target, tmp)
    try {
      await applyOwner(this.init.owners.of(entry, 0), async (uid, gid) => fs.lchown(tmp, uid, gid), err => { this.ownerRefused(path.join(dirAbs, entry.name), err) })
      const t = utimesSeconds(entry.mtimeMs)
      await fs.lutimes(tmp, t, t)
    } catch (err) {
      await fs.rm(tmp, { force: true })
      throw err
    }
    await this.place(tmp, path.join(dirAbs, entry.name), parts)
    this.stats.symlinks++
  }

  /** writes a folder's planned contents into `abs`, a folder already made and checked */
  async writeContents (contents: PlannedContents, abs: string, parts: string[]): Promise<void> {
    const pending: Array<Promise<unknown>> = []
    for (const entry of contents.children) {
      this.options.signal?.throwIfAborted()
      const childParts = [...parts, entry.name]
      // checked while planning already; the plan is not changed after, so this cannot fail
      if (!isSafeName(entry.name)) throw new UnsafePathError(`refusing to restore ${shownPath(childParts)}: entry name ${JSON.stringify(entry.name)} is not a single safe path component`)
      if (entry.kind === 'dir') {
        const childAbs = path.join(abs, entry.name)
        await this.makeDir(childAbs, childParts)
        await this.writeContents(entry.contents, childAbs, childParts)
        await this.finishDir(childAbs, entry.mode, entry.mtimeMs, entry.owner)
      } else if (entry.kind === 'file' && entry.size <= SMALL_FILE) {
        if (this.smallFiles.size >= SMALL_FILE_CONCURRENCY) await this.smallFiles.onSizeLessThan(SMALL_FILE_CONCURRENCY)
        const p = this.smallFiles.add(async () => this.writeFile(entry, abs, childParts))
        p.catch(() => {})
        pending.push(p)
      } else if (entry.kind === 'file') {
        await this.writeFile(entry, abs, childParts)
      } else {
        await this.writeSymlink(entry, abs, childParts)
      }
    }
    // the folder is finished (mode, mtime) only after all its files are in place
    await Promise.all(pending)
  }

  /** lets writes already running end, so nothing changes after the restore reported a failure */
  async settle (): Promise<void> {
    this.smallFiles.clear()
    await this.smallFiles.onIdle()
  }
}

/**
 * Writes a plan under `target`, each source to `<target>/<source name>`; folder modes and mtimes
 * are set after their children, deepest first. The marker goes first and is removed last. A
 * failure leaves what was already written in place, the marker with it.
 */
export async function writePlan (blocks: BlockGetter, plan: RestorePlan, target: string, init: WriteInit, options: AbortOptions & ProgressOptions<RestoreProgressEvents> = {}): Promise<RestoreStats> {
  await fs.mkdir(target, { recursive: true, mode: 0o700 })
  const writer = new PlanWriter(blocks, await fs.realpath(target), init, options)
  await writeMarker(target, init.marker)
  try {
    for (const source of plan.sources) {
      const abs = path.join(target, source.name)
      await writer.makeDir(abs, [source.name])
      await writer.writeContents(source.contents, abs, [source.name])
      await writer.finishDir(abs, source.mode, source.mtimeMs, source.owner)
    }
  } catch (err) {
    await writer.settle()
    throw err
  }
  await syncDir(target)
  await removeMarker(target)
  return writer.stats
}
