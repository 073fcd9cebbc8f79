// Binding a Unix socket that has its final mode and group from the first moment anyone else could
// reach it: the server listens on a path inside a fresh 0700 folder next to the target (so nobody
// but the agent's user can connect, whatever the umask), the socket is given its mode and group
// there, and only then is it linked into place. The link fails if the path was taken meanwhile.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { SocketPathTakenError, SocketSetupError } from './errors.js'
import type net from 'node:net'

export interface SocketAccess {
  /** permission bits, e.g. 0o600 */
  mode: number
  /** gid to give the socket; undefined keeps the agent's own */
  gid?: number
}

/** a fresh 0700 folder in `dir` with a short name (the socket path inside must stay under 108 bytes) */
async function privateFolder (dir: string): Promise<string> {
  for (let i = 0; ; i++) {
    const p = path.join(dir, `.${randomBytes(2).toString('hex')}`)
    try {
      await fs.mkdir(p, { mode: 0o700 })
      // the umask may have taken bits the agent needs; nobody else may have any
      await fs.chmod(p, 0o700)
      return p
    } catch (err: any) {
      if (err.code !== 'EEXIST' || i >= 20) throw err
    }
  }
}

async function listenOn (server: net.Server, p: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(p, () => { server.off('error', reject); resolve() })
  })
}

/**
 * Makes `server` listen on `socketPath` with `access`. Throws SocketPathTakenError when the path
 * appears while starting, SocketSetupError when the mode or group cannot be set (the server is
 * then closed).
 */
export async function listenPrivately (server: net.Server, socketPath: string, access: SocketAccess): Promise<void> {
  let folder: string
  try {
    folder = await privateFolder(path.dirname(socketPath))
  } catch (err: any) {
    const why = err.code === 'ENOENT' ? 'the folder does not exist' : String(err.message)
    throw new SocketSetupError(`cannot create the socket ${socketPath}: ${why}`)
  }
  const inside = path.join(folder, 's')
  try {
    await listenOn(server, inside)
    try {
      await fs.chmod(inside, access.mode)
      if (access.gid != null) await fs.chown(inside, -1, access.gid)
    } catch (err: any) {
      const what = access.gid != null ? `mode ${access.mode.toString(8).padStart(4, '0')} and group ${access.gid}` : `mode ${access.mode.toString(8).padStart(4, '0')}`
      throw new SocketSetupError(`cannot give the socket ${socketPath} ${what}: ${String(err.message)}${err.code === 'EPERM' ? ' (the agent\'s user must belong to the group)' : ''}`)
    }
    try {
      await fs.link(inside, socketPath)
    } catch (err: any) {
      if (err.code === 'EEXIST') throw new SocketPathTakenError(`${socketPath} was taken while this agent was starting: another agent is listening on it`)
      // a file system without hard links: rename is just as atomic, but replaces
      if (err.code !== 'EPERM' && err.code !== 'ENOTSUP' && err.code !== 'EOPNOTSUPP') throw err
      await fs.rename(inside, socketPath)
    }
  } catch (err) {
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    await fs.rm(folder, { recursive: true, force: true })
    throw err
  }
  await fs.rm(folder, { recursive: true, force: true })
}
