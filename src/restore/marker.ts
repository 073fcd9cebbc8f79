// The restore marker: a small file at the top of the target, written before the first entry and
// removed once the restore completed, saying which snapshot part is being restored there. Resume
// continues only the restore its marker names.
import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { syncDir } from '../store/index.js'
import { ResumeMismatchError } from './errors.js'
import type { AbortOptions } from '@libp2p/interface'

export const MARKER_NAME = '.snapmesh-restore'
/** a marker longer than this is not one */
const MAX_MARKER_BYTES = 4096

export interface RestoreMarker {
  /** the snapshot ID, when the caller knows it */
  snapshot?: string
  /** the participant whose part is restored, when the caller knows it */
  peerId?: string
  /** the manifest root */
  root: string
}

function describeMarker (m: RestoreMarker): string {
  return `snapshot ${m.snapshot ?? '(unnamed)'} of participant ${m.peerId ?? '(unnamed)'} (root ${m.root})`
}

/** a few names of what a folder holds, for a message */
function describeListing (names: string[]): string {
  const shown = names.slice(0, 5).map(n => JSON.stringify(n)).join(', ')
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown
}

async function readMarker (file: string): Promise<unknown> {
  const handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK)
  try {
    const st = await handle.stat()
    if (!st.isFile() || st.size > MAX_MARKER_BYTES) return undefined
    const buf = Buffer.alloc(st.size)
    const { bytesRead } = await handle.read(buf, 0, buf.byteLength, 0)
    return JSON.parse(buf.subarray(0, bytesRead).toString('utf8'))
  } catch {
    return undefined
  } finally {
    await handle.close()
  }
}

/**
 * With resume: the target must be missing, empty, or hold the marker of the same restore (same
 * snapshot, participant and root); otherwise ResumeMismatchError naming what is there.
 */
export async function checkResumable (target: string, expected: RestoreMarker, options: AbortOptions = {}): Promise<void> {
  options.signal?.throwIfAborted()
  let names: string[]
  try {
    names = await fs.readdir(target)
  } catch (err: any) {
    if (err.code === 'ENOENT') return
    throw err
  }
  if (names.length === 0) return
  const file = path.join(target, MARKER_NAME)
  const st = await fs.lstat(file).catch(() => undefined)
  if (st == null) throw new ResumeMismatchError(`cannot resume into ${target}: it holds ${describeListing(names.sort())} but no ${MARKER_NAME} marker, so it is not an interrupted restore; nothing was written`)
  const found = st.isFile() ? await readMarker(file) : undefined
  if (found == null || typeof found !== 'object' || Array.isArray(found)) {
    throw new ResumeMismatchError(`cannot resume into ${target}: its ${MARKER_NAME} is not a restore marker (${st.isFile() ? 'unreadable or malformed' : 'not a regular file'}); nothing was written`)
  }
  const m = found as Record<string, unknown>
  const same = m.root === expected.root && m.snapshot === expected.snapshot && m.peerId === expected.peerId
  if (!same) {
    const there: RestoreMarker = { root: String(m.root), ...(typeof m.snapshot === 'string' ? { snapshot: m.snapshot } : {}), ...(typeof m.peerId === 'string' ? { peerId: m.peerId } : {}) }
    throw new ResumeMismatchError(`cannot resume into ${target}: it holds an interrupted restore of ${describeMarker(there)}, not of ${describeMarker(expected)}; nothing was written`)
  }
}

/** writes the marker (temporary name, fsync, rename, folder fsync) */
export async function writeMarker (target: string, marker: RestoreMarker): Promise<void> {
  const tmp = path.join(target, `.snapmesh-${randomBytes(8).toString('hex')}.tmp`)
  const body = JSON.stringify({ v: 1, root: marker.root, ...(marker.snapshot != null ? { snapshot: marker.snapshot } : {}), ...(marker.peerId != null ? { peerId: marker.peerId } : {}) }) + '\n'
  const handle = await fs.open(tmp, 'wx', 0o600)
  try {
    await handle.writeFile(body)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await fs.rename(tmp, path.join(target, MARKER_NAME))
  } catch (err) {
    await fs.rm(tmp, { force: true })
    throw err
  }
  await syncDir(target)
}

/** removes the marker once the restore is complete */
export async function removeMarker (target: string): Promise<void> {
  await fs.rm(path.join(target, MARKER_NAME), { force: true })
  await syncDir(target)
}
