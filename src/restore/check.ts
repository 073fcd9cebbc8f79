// Every check a restore makes on paths, names and the target: the ones made before anything is
// written (the target, the include selections, each name in the manifest) and the ones made while
// writing, on each folder before anything is put in it, so nothing lands outside the target.
import fs from 'node:fs/promises'
import path from 'node:path'
import { InvalidIncludeError, InvalidTargetError, ManifestExceedsStatsError, TargetNotEmptyError, UnsafePathError } from './errors.js'
import { MARKER_NAME } from './marker.js'
import type { RestoreTotals } from './plan.js'
import type { Entry, FileEntry, RootNode } from '../capture/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { Stats } from 'node:fs'

/** A name that is safe to join to a folder: one component, not `.` or `..`, no NUL, at most 255 bytes. */
export function isSafeName (name: unknown): name is string {
  return typeof name === 'string' && name !== '' && name !== '.' && name !== '..' && !name.includes('/') &&
    !name.includes('\0') && Buffer.byteLength(name) <= 255
}

/** a path in the snapshot, `<source>/<path>`, quoted for a message */
export function shownPath (parts: string[]): string {
  return JSON.stringify(parts.join('/'))
}

/** the target as an absolute path, or InvalidTargetError */
export function resolveTarget (target: unknown): string {
  if (typeof target !== 'string' || !path.isAbsolute(target)) throw new InvalidTargetError(`restore target must be an absolute path, got ${JSON.stringify(target)}`)
  return path.resolve(target)
}

/** the components of one include selection, each a safe name; InvalidIncludeError otherwise */
export function includeParts (inc: unknown): string[] {
  if (typeof inc !== 'string' || inc.includes('\0')) throw new InvalidIncludeError(`include ${JSON.stringify(inc)} is not a path`)
  const parts = inc.split('/').filter(p => p !== '' && p !== '.')
  if (parts.length === 0) throw new InvalidIncludeError(`include ${JSON.stringify(inc)} names nothing: use <source>/<path>`)
  const unsafe = parts.find(p => !isSafeName(p))
  if (unsafe != null) throw new InvalidIncludeError(`include ${JSON.stringify(inc)} has the component ${JSON.stringify(unsafe)}, which cannot be a path in a snapshot`)
  return parts
}

/** refuses the whole restore when a source name is not a single safe component, or is the marker's */
export function checkSourceNames (root: RootNode): void {
  for (const source of root.sources) {
    if (!isSafeName(source.name)) throw new UnsafePathError(`refusing to restore source ${JSON.stringify(source.name)}: its name is not a single safe path component`)
    if (source.name === MARKER_NAME) throw new UnsafePathError(`refusing to restore source ${JSON.stringify(source.name)}: the name is reserved for the restore marker`)
  }
}

/**
 * Refuses, before anything is written, a plan whose totals exceed the bound (what the record
 * states of the capture): equal is allowed, more is not. `bound` undefined means no bound.
 */
export function checkBound (totals: RestoreTotals, bound: RestoreTotals | undefined, root: string, what = 'its record states'): void {
  if (bound == null) return
  const over = (['files', 'dirs', 'symlinks', 'bytes'] as const).filter(k => totals[k] > bound[k])
  if (over.length === 0) return
  const held = over.map(k => `${totals[k]} ${k}`).join(', ')
  const limit = over.map(k => `${bound[k]} ${k}`).join(', ')
  throw new ManifestExceedsStatsError(`refusing to restore manifest ${root}: it expands to ${held}, but ${what} ${limit}; nothing was written`)
}

/** refuses the whole restore, before anything is written, when an entry's name is not a single safe component */
export function checkEntryName (entry: Entry, parts: string[]): void {
  if (!isSafeName(entry.name)) throw new UnsafePathError(`refusing to restore ${shownPath(parts)}: entry name ${JSON.stringify(entry.name)} is not a single safe path component; nothing was written`)
}

export async function lstatOrUndefined (p: string, options: AbortOptions = {}): Promise<Stats | undefined> {
  options.signal?.throwIfAborted()
  try {
    return await fs.lstat(p)
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
}

/** the target may be missing or a folder; with content in it only when `mayHaveContent` */
export async function checkTarget (target: string, mayHaveContent: boolean, options: AbortOptions = {}): Promise<void> {
  const existing = await lstatOrUndefined(target, options)
  if (existing == null) return
  if (!existing.isDirectory()) throw new InvalidTargetError(`restore target ${target} exists and is not a folder`)
  if (!mayHaveContent && (await fs.readdir(target)).length > 0) throw new TargetNotEmptyError(`restore target ${target} is not empty (pass overwrite to restore into it)`)
}

/**
 * What is in the way where a folder is to be made, when overwriting: a folder is merged into,
 * anything else but a symlink is replaced, and a symlink refuses the restore.
 */
export function inTheWayOfDir (st: Stats, abs: string, parts: string[]): 'merge' | 'replace' {
  if (st.isSymbolicLink()) throw new UnsafePathError(`refusing to restore ${shownPath(parts)}: ${abs} already exists in the target as a symlink`)
  return st.isDirectory() ? 'merge' : 'replace'
}

/** refuses a folder that is a symlink or does not resolve to where it belongs under the target's real path */
export async function assertInside (abs: string, parts: string[], targetReal: string, options: AbortOptions = {}): Promise<void> {
  options.signal?.throwIfAborted()
  const st = await fs.lstat(abs)
  if (st.isSymbolicLink()) throw new UnsafePathError(`refusing to restore into ${shownPath(parts)}: ${abs} is a symlink in the target`)
  if (!st.isDirectory()) throw new UnsafePathError(`refusing to restore into ${shownPath(parts)}: ${abs} is not a folder`)
  const expected = path.join(targetReal, ...parts)
  const real = await fs.realpath(abs)
  if (real !== expected) throw new UnsafePathError(`refusing to restore into ${shownPath(parts)}: ${abs} resolves to ${real}, outside its place ${expected} in the target`)
}

/**
 * Whether a file already in place is one an interrupted restore finished: same size, mtime and
 * the mode (and owner, where owners are applied) the restore gives it (files are renamed into
 * place only once complete, with their mtime set).
 */
export function isRestored (st: Stats | undefined, entry: FileEntry, expected: { mode: number, uid?: number, gid?: number }): boolean {
  return st?.isFile() === true && st.size === entry.size && (st.mode & 0o7777) === expected.mode && Math.abs(st.mtimeMs - entry.mtimeMs) < 0.001 &&
    (expected.uid == null || st.uid === expected.uid) && (expected.gid == null || st.gid === expected.gid)
}
