import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { CustomProgressEvent, type ProgressOptions, type ProgressEvent } from 'progress-events'
import { isSafeName, readChunks, readDir, readRoot, type Entry } from '../capture/index.js'
import { verifyBlock } from '../store/index.js'
import { TargetNotEmptyError, UnsafePathError } from './errors.js'
import type { BlockGetter } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export { TargetNotEmptyError, UnsafePathError } from './errors.js'

export interface RestoreStats { files: number, dirs: number, symlinks: number, bytes: number, durationMs: number }

export type RestoreProgressEvents = ProgressEvent<'restore:file', { path: string, bytes: number }>

export interface RestoreInit {
  root: CID
  /** absolute; must not exist or be an empty directory */
  target: string
  /** `<source>` or `<source>/<path>` prefixes to restore; default everything */
  include?: string[]
}

/**
 * Turns a manifest back into files under `target/<source>/`. Every path is checked here before
 * anything is written: entry names must be single safe components, and every directory written
 * into must resolve inside the target, so nothing is ever written outside it. Files are written to
 * a temporary name, fsynced and renamed into place; directory modes and mtimes are set after their
 * children, deepest first.
 */
export async function restore (components: { blocks: BlockGetter }, init: RestoreInit, options: AbortOptions & ProgressOptions<RestoreProgressEvents> = {}): Promise<RestoreStats> {
  const started = Date.now()
  const { blocks } = components
  if (!path.isAbsolute(init.target)) throw new UnsafePathError(`restore target must be absolute, got ${JSON.stringify(init.target)}`)
  const include = (init.include ?? []).map(p => p.split('/').filter(s => s !== '' && s !== '.'))
  for (const p of include) {
    if (p.length === 0 || p.some(s => s === '..')) throw new UnsafePathError(`include path ${JSON.stringify(p.join('/'))} is not a path inside the snapshot`)
  }
  const root = await readRoot(blocks, init.root, options)
  await prepareTarget(init.target)
  const targetReal = await fs.realpath(init.target)
  const stats: RestoreStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0, durationMs: 0 }

  /** 'all' when everything below is wanted, 'some' when only part of it, 'none' otherwise */
  const selected = (parts: string[]): 'all' | 'some' | 'none' => {
    if (include.length === 0) return 'all'
    let some = false
    for (const inc of include) {
      const n = Math.min(inc.length, parts.length)
      if (inc.slice(0, n).every((s, i) => s === parts[i])) {
        if (parts.length >= inc.length) return 'all'
        some = true
      }
    }
    return some ? 'some' : 'none'
  }

  /** refuses a directory that does not resolve inside the target (a symlinked parent, say) */
  const checkDir = async (dir: string, shown: string): Promise<void> => {
    const st = await fs.lstat(dir)
    if (st.isSymbolicLink() || !st.isDirectory()) throw new UnsafePathError(`refusing to restore ${shown}: ${dir} is not a plain directory`)
    const real = await fs.realpath(dir)
    if (real !== targetReal && !real.startsWith(targetReal + path.sep)) throw new UnsafePathError(`refusing to restore ${shown}: it resolves outside ${init.target}`)
  }

  const writeFile = async (entry: Entry, file: string, shown: string): Promise<void> => {
    const tmp = path.join(path.dirname(file), `.${entry.name.slice(0, 64)}.snapmesh-${crypto.randomBytes(6).toString('hex')}`)
    const fh = await fs.open(tmp, 'wx', 0o600)
    let size = 0
    try {
      for await (const [cid, len] of readChunks(blocks, entry, options)) {
        const bytes = await blocks.get(cid, options)
        verifyBlock(cid, bytes)
        if (bytes.length !== len) throw new UnsafePathError(`chunk ${cid.toString()} of ${shown} has ${bytes.length} bytes, the manifest says ${len}`)
        await fh.write(bytes)
        size += bytes.length
      }
      if (size !== entry.size) throw new UnsafePathError(`${shown} restored to ${size} bytes, the manifest says ${String(entry.size)}`)
      await fh.chmod(entry.mode)
      await fh.sync()
    } catch (err) {
      await fh.close()
      await fs.rm(tmp, { force: true })
      throw err
    }
    await fh.close()
    const t = new Date(entry.mtimeMs)
    await fs.utimes(tmp, t, t)
    await fs.rename(tmp, file)
    stats.files++
    stats.bytes += size
    options.onProgress?.(new CustomProgressEvent('restore:file', { path: shown, bytes: size }))
  }

  const restoreDir = async (dirCid: CID, dirAbs: string, parts: string[]): Promise<void> => {
    for await (const entry of readDir(blocks, dirCid, options)) {
      options.signal?.throwIfAborted()
      const childParts = [...parts, entry.name]
      const shown = childParts.join('/')
      if (!isSafeName(entry.name)) throw new UnsafePathError(`refusing to restore ${JSON.stringify(shown)}: not a safe name`)
      const sel = selected(childParts)
      if (sel === 'none') continue
      await checkDir(dirAbs, shown)
      const abs = path.join(dirAbs, entry.name)
      if (entry.kind === 'dir') {
        await fs.mkdir(abs, { mode: 0o700 })
        await restoreDir(entry.dir as CID, abs, childParts)
        await fs.chmod(abs, entry.mode)
        const t = new Date(entry.mtimeMs)
        await fs.utimes(abs, t, t)
        stats.dirs++
      } else if (sel === 'some') {
        continue
      } else if (entry.kind === 'symlink') {
        await fs.symlink(entry.target as string, abs)
        const t = new Date(entry.mtimeMs)
        await fs.lutimes(abs, t, t).catch(() => {})
        stats.symlinks++
      } else {
        await writeFile(entry, abs, shown)
      }
    }
  }

  for (const source of root.sources) {
    if (source.dir == null || selected([source.name]) === 'none') continue
    const abs = path.join(init.target, source.name)
    await fs.mkdir(abs, { mode: 0o700 })
    await restoreDir(source.dir, abs, [source.name])
    // the source folder itself carries the mode and mtime of the captured root folder
    if (typeof source.mode === 'number') await fs.chmod(abs, source.mode & 0o7777)
    if (typeof source.mtimeMs === 'number') await fs.utimes(abs, new Date(source.mtimeMs), new Date(source.mtimeMs))
  }
  stats.durationMs = Date.now() - started
  return stats
}

async function prepareTarget (target: string): Promise<void> {
  try {
    const st = await fs.lstat(target)
    if (!st.isDirectory()) throw new TargetNotEmptyError(`restore target ${target} exists and is not a directory`)
    if ((await fs.readdir(target)).length > 0) throw new TargetNotEmptyError(`restore target ${target} is not empty`)
  } catch (err: any) {
    if (err.code !== 'ENOENT') throw err
    await fs.mkdir(target, { recursive: true, mode: 0o700 })
  }
}
