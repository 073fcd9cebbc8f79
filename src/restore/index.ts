import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import PQueue from 'p-queue'
import { CustomProgressEvent } from 'progress-events'
import { InvalidManifestError, readChunks, readDir, readRoot } from '../capture/index.js'
import { verifyBlock } from '../store/index.js'
import { InvalidIncludeError, InvalidTargetError, TargetNotEmptyError, UnsafePathError } from './errors.js'
import type { Entry, FileEntry } from '../capture/index.js'
import type { BlockGetter } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

export { InvalidIncludeError, InvalidTargetError, TargetNotEmptyError, UnsafePathError } from './errors.js'

const log = logger('snapmesh:restore')

/** chunks fetched ahead of the one being written, per file */
const PREFETCH = 4
/** files up to this size are written several at a time (fsync dominates small files) */
const SMALL_FILE = 1024 * 1024
const SMALL_FILE_CONCURRENCY = 8

export interface RestoreStats {
  files: number
  /** folders, the source folders included */
  dirs: number
  symlinks: number
  bytes: number
  /** files kept from an interrupted restore (with `resume`), counted in `files` and `bytes` too */
  filesKept?: number
  durationMs: number
}

export type RestoreProgressEvents =
  | ProgressEvent<'restore:start', { files: number, dirs: number, symlinks: number, bytes: number }>
  | ProgressEvent<'restore:file', { path: string, bytes: number }>

export interface RestoreComponents {
  blocks: BlockGetter
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
   */
  resume?: boolean
}

/** A name that is safe to join to a folder: one component, not `.` or `..`, no NUL, at most 255 bytes. */
export function isSafeName (name: unknown): name is string {
  return typeof name === 'string' && name !== '' && name !== '.' && name !== '..' && !name.includes('/') &&
    !name.includes('\0') && Buffer.byteLength(name) <= 255
}

/** what of a folder is wanted: everything, or only the named children (and what is wanted of them) */
interface Selection { all: boolean, children: Map<string, Selection>, include?: string, matched: boolean }

const ALL: Selection = { all: true, children: new Map(), matched: true }

function parseIncludes (include: string[] | undefined): Map<string, Selection> | undefined {
  if (include == null || include.length === 0) return undefined
  const sources = new Map<string, Selection>()
  for (const inc of include) {
    if (typeof inc !== 'string' || inc.includes('\0')) throw new InvalidIncludeError(`include ${JSON.stringify(inc)} is not a path`)
    const parts = inc.split('/').filter(p => p !== '' && p !== '.')
    if (parts.length === 0) throw new InvalidIncludeError(`include ${JSON.stringify(inc)} names nothing: use <source>/<path>`)
    const unsafe = parts.find(p => !isSafeName(p))
    if (unsafe != null) throw new InvalidIncludeError(`include ${JSON.stringify(inc)} has the component ${JSON.stringify(unsafe)}, which cannot be a path in a snapshot`)
    let level = sources
    let node: Selection | undefined
    for (const part of parts) {
      node = level.get(part)
      if (node == null) {
        node = { all: false, children: new Map(), matched: false }
        level.set(part, node)
      }
      level = node.children
    }
    node!.all = true // eslint-disable-line @typescript-eslint/no-non-null-assertion
    node!.include ??= inc // eslint-disable-line @typescript-eslint/no-non-null-assertion
  }
  return sources
}

function unmatched (level: Map<string, Selection>, out: string[]): string[] {
  for (const node of level.values()) {
    if (node.include != null && !node.matched) out.push(node.include)
    if (!node.all) unmatched(node.children, out)
  }
  return out
}

function firstInclude (sel: Selection): string {
  if (sel.include != null) return sel.include
  for (const child of sel.children.values()) return firstInclude(child)
  return ''
}

/** seconds for utimes that land on the microsecond nearest `ms` (utimes keeps microseconds and truncates) */
function utimesSeconds (ms: number): number {
  return (Math.round(ms * 1000) + 0.5) / 1e6
}

async function syncDir (dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function tempName (dir: string): string {
  return path.join(dir, `.snapmesh-${randomBytes(8).toString('hex')}.tmp`)
}

async function lstatOrUndefined (p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await fs.lstat(p)
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Turns a manifest back into files under `<target>/<source name>/`.
 *
 * Safety, which lives here and nowhere else: before anything is written, the whole selected tree
 * is read and checked, and one entry whose name is not a single safe component (or a source name
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
 */
export async function restore (components: RestoreComponents, init: RestoreInit, options: AbortOptions & ProgressOptions<RestoreProgressEvents> = {}): Promise<RestoreStats> {
  const started = Date.now()
  const { blocks } = components
  const signal = options.signal
  if (typeof init.target !== 'string' || !path.isAbsolute(init.target)) throw new InvalidTargetError(`restore target must be an absolute path, got ${JSON.stringify(init.target)}`)
  const target = path.resolve(init.target)
  const selections = parseIncludes(init.include)

  const root = await readRoot(blocks, init.root, options)
  for (const source of root.sources) {
    if (!isSafeName(source.name)) throw new UnsafePathError(`refusing to restore source ${JSON.stringify(source.name)}: its name is not a single safe path component`)
  }
  for (const [name, sel] of selections ?? []) {
    const source = root.sources.find(s => s.name === name)
    if (source == null) throw new InvalidIncludeError(`include ${JSON.stringify(sel.include ?? name)}: the snapshot has no source ${JSON.stringify(name)} (it has ${root.sources.map(s => JSON.stringify(s.name)).join(', ') || 'none'})`)
    if (source.dir == null) throw new InvalidIncludeError(`include ${JSON.stringify(sel.include ?? name)}: source ${JSON.stringify(name)} was not captured: ${String(source.error)}`)
    sel.matched = true
  }
  const wanted = root.sources.flatMap(source => {
    if (source.dir == null) return []
    const sel = selections == null ? ALL : selections.get(source.name)
    return sel == null ? [] : [{ source, dir: source.dir, sel }]
  })

  const existing = await lstatOrUndefined(target)
  if (existing != null) {
    if (!existing.isDirectory()) throw new InvalidTargetError(`restore target ${target} exists and is not a folder`)
    if ((init.overwrite !== true && init.resume !== true) && (await fs.readdir(target)).length > 0) throw new TargetNotEmptyError(`restore target ${target} is not empty (pass overwrite to restore into it)`)
  }

  // pass 1: read and check everything selected; count it
  const totals = { files: 0, dirs: 0, symlinks: 0, bytes: 0 }
  const shownPath = (parts: string[]): string => JSON.stringify(parts.join('/'))

  const checkDir = async (dir: CID, parts: string[], sel: Selection): Promise<void> => {
    for await (const entry of readDir(blocks, dir, options)) {
      signal?.throwIfAborted()
      const childParts = [...parts, entry.name]
      if (!isSafeName(entry.name)) throw new UnsafePathError(`refusing to restore ${shownPath(childParts)}: entry name ${JSON.stringify(entry.name)} is not a single safe path component; nothing was written`)
      const childSel = sel.all ? ALL : sel.children.get(entry.name)
      if (childSel == null) continue
      childSel.matched = true
      if (!childSel.all && entry.kind !== 'dir') throw new InvalidIncludeError(`include ${JSON.stringify(firstInclude(childSel))}: ${shownPath(childParts)} is a ${entry.kind}, not a folder`)
      if (entry.kind === 'dir') {
        totals.dirs++
        await checkDir(entry.dir, childParts, childSel)
      } else if (entry.kind === 'file') {
        totals.files++
        totals.bytes += entry.size
      } else {
        totals.symlinks++
      }
    }
  }

  for (const { source, dir, sel } of wanted) {
    totals.dirs++
    await checkDir(dir, [source.name], sel)
  }
  const missed = selections != null ? unmatched(selections, []) : []
  if (missed.length > 0) throw new InvalidIncludeError(`nothing in the snapshot matches ${missed.map(m => JSON.stringify(m)).join(', ')}`)
  options.onProgress?.(new CustomProgressEvent('restore:start', { ...totals }))

  // pass 2: write
  await fs.mkdir(target, { recursive: true, mode: 0o700 })
  const targetReal = await fs.realpath(target)
  const stats: RestoreStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0, durationMs: 0 }

  /** refuses a folder that is a symlink or does not resolve to where it belongs under the target */
  const assertInside = async (abs: string, parts: string[]): Promise<void> => {
    const st = await fs.lstat(abs)
    if (st.isSymbolicLink()) throw new UnsafePathError(`refusing to restore into ${shownPath(parts)}: ${abs} is a symlink in the target`)
    if (!st.isDirectory()) throw new UnsafePathError(`refusing to restore into ${shownPath(parts)}: ${abs} is not a folder`)
    const expected = path.join(targetReal, ...parts)
    const real = await fs.realpath(abs)
    if (real !== expected) throw new UnsafePathError(`refusing to restore into ${shownPath(parts)}: ${abs} resolves to ${real}, outside its place ${expected} in the target`)
  }

  /** makes (or, with overwrite, reuses) a folder and checks it */
  const makeDir = async (abs: string, parts: string[]): Promise<void> => {
    try {
      await fs.mkdir(abs, { mode: 0o700 })
    } catch (err: any) {
      if (err.code !== 'EEXIST' || (init.overwrite !== true && init.resume !== true)) throw err
      const st = await fs.lstat(abs)
      if (st.isSymbolicLink()) throw new UnsafePathError(`refusing to restore ${shownPath(parts)}: ${abs} already exists in the target as a symlink`)
      if (!st.isDirectory()) {
        log('replacing %s with a folder', abs)
        await fs.rm(abs)
        await fs.mkdir(abs, { mode: 0o700 })
      } else {
        // make sure the folder can be written into; its recorded mode is set afterwards
        await fs.chmod(abs, (st.mode & 0o7777) | 0o700)
      }
    }
    await assertInside(abs, parts)
  }

  const finishDir = async (abs: string, mode: number | undefined, mtimeMs: number | undefined): Promise<void> => {
    await syncDir(abs)
    if (mode != null) await fs.chmod(abs, mode)
    if (mtimeMs != null) {
      const t = utimesSeconds(mtimeMs)
      await fs.utimes(abs, t, t)
    }
    stats.dirs++
  }

  const place = async (tmp: string, abs: string, parts: string[]): Promise<void> => {
    try {
      await fs.rename(tmp, abs)
    } catch (err: any) {
      await fs.rm(tmp, { force: true })
      if (err.code === 'EISDIR' || err.code === 'ENOTEMPTY' || err.code === 'EEXIST') throw new InvalidTargetError(`cannot restore ${shownPath(parts)}: a folder is in the way at ${abs}`)
      throw err
    }
  }

  const writeFile = async (entry: FileEntry, dirAbs: string, parts: string[]): Promise<void> => {
    const abs = path.join(dirAbs, entry.name)
    if (init.resume === true) {
      const st = await lstatOrUndefined(abs)
      if (st?.isFile() === true && st.size === entry.size && (st.mode & 0o7777) === entry.mode && Math.abs(st.mtimeMs - entry.mtimeMs) < 0.001) {
        stats.files++
        stats.bytes += entry.size
        stats.filesKept = (stats.filesKept ?? 0) + 1
        options.onProgress?.(new CustomProgressEvent('restore:file', { path: parts.join('/'), bytes: entry.size }))
        return
      }
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
        signal?.throwIfAborted()
        fetch(cid, len)
        if (ahead.length >= PREFETCH) await writeNext()
      }
      while (ahead.length > 0) await writeNext()
      if (size !== entry.size) throw new InvalidManifestError(`${shownPath(parts)} came to ${size} bytes, the manifest says ${entry.size}`)
      await handle.chmod(entry.mode)
      const t = utimesSeconds(entry.mtimeMs)
      await handle.utimes(t, t)
      await handle.sync()
    } catch (err) {
      await handle.close()
      await fs.rm(tmp, { force: true })
      throw err
    }
    await handle.close()
    await place(tmp, abs, parts)
    stats.files++
    stats.bytes += size
    options.onProgress?.(new CustomProgressEvent('restore:file', { path: parts.join('/'), bytes: size }))
  }

  const writeSymlink = async (entry: Entry & { kind: 'symlink' }, dirAbs: string, parts: string[]): Promise<void> => {
    const tmp = tempName(dirAbs)
    await fs.symlink(entry.target, tmp)
    try {
      const t = utimesSeconds(entry.mtimeMs)
      await fs.lutimes(tmp, t, t)
    } catch (err) {
      await fs.rm(tmp, { force: true })
      throw err
    }
    await place(tmp, path.join(dirAbs, entry.name), parts)
    stats.symlinks++
  }

  const smallFiles = new PQueue({ concurrency: SMALL_FILE_CONCURRENCY })
  const writeDir = async (dir: CID, abs: string, parts: string[], sel: Selection): Promise<void> => {
    const pending: Array<Promise<unknown>> = []
    for await (const entry of readDir(blocks, dir, options)) {
      signal?.throwIfAborted()
      const childParts = [...parts, entry.name]
      // checked in pass 1 already; blocks are content addressed, so this cannot fail unless the code changes
      if (!isSafeName(entry.name)) throw new UnsafePathError(`refusing to restore ${shownPath(childParts)}: entry name ${JSON.stringify(entry.name)} is not a single safe path component`)
      const childSel = sel.all ? ALL : sel.children.get(entry.name)
      if (childSel == null) continue
      if (entry.kind === 'dir') {
        const childAbs = path.join(abs, entry.name)
        await makeDir(childAbs, childParts)
        await writeDir(entry.dir, childAbs, childParts, childSel)
        await finishDir(childAbs, entry.mode, entry.mtimeMs)
      } else if (entry.kind === 'file' && entry.size <= SMALL_FILE) {
        if (smallFiles.size >= SMALL_FILE_CONCURRENCY) await smallFiles.onSizeLessThan(SMALL_FILE_CONCURRENCY)
        const p = smallFiles.add(async () => writeFile(entry, abs, childParts))
        p.catch(() => {})
        pending.push(p)
      } else if (entry.kind === 'file') {
        await writeFile(entry, abs, childParts)
      } else {
        await writeSymlink(entry, abs, childParts)
      }
    }
    // the folder is finished (mode, mtime) only after all its files are in place
    await Promise.all(pending)
  }

  try {
    for (const { source, dir, sel } of wanted) {
      const abs = path.join(target, source.name)
      await makeDir(abs, [source.name])
      await writeDir(dir, abs, [source.name], sel)
      await finishDir(abs, source.mode, source.mtimeMs)
    }
  } catch (err) {
    // let writes already running end before reporting, so nothing changes after restore returns
    smallFiles.clear()
    await smallFiles.onIdle()
    throw err
  }
  await syncDir(target)
  stats.durationMs = Date.now() - started
  log('restored %d files, %d folders, %d symlinks (%d bytes) from %s to %s', stats.files, stats.dirs, stats.symlinks, stats.bytes, init.root, target)
  return stats
}
