// Reading what a restore put in a temporary folder, never following a symlink: the manifest that
// put it there is another host's, and could plant `apps/<app>/state` as a link to any file here.
import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { UnsafeAppStateError } from './errors.js'

/**
 * The bytes of `<top>/<parts...>`: every folder on the way must be a real folder and the file a
 * regular file, none of them a symlink (the file is opened with O_NOFOLLOW and checked open).
 * Rejects with UnsafeAppStateError naming the path otherwise, and with ENOENT when a part is missing.
 */
export async function readRestoredFile (top: string, parts: string[]): Promise<Buffer> {
  let at = top
  for (let i = 0; i < parts.length - 1; i++) {
    at = path.join(at, parts[i])
    const st = await fs.lstat(at)
    if (!st.isDirectory()) throw new UnsafeAppStateError(`refusing to read the restored ${parts.join('/')}: ${parts.slice(0, i + 1).join('/')} is ${st.isSymbolicLink() ? 'a symlink' : 'not a folder'}`)
  }
  const file = path.join(at, parts[parts.length - 1])
  let handle
  try {
    handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK)
  } catch (err: any) {
    if (err.code === 'ELOOP') throw new UnsafeAppStateError(`refusing to read the restored ${parts.join('/')}: it is a symlink`)
    throw err
  }
  try {
    const st = await handle.stat()
    if (!st.isFile()) throw new UnsafeAppStateError(`refusing to read the restored ${parts.join('/')}: it is not a regular file`)
    return await handle.readFile()
  } finally {
    await handle.close()
  }
}
