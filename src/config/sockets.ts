// The local access keys of the config: the two admin sockets (full and read-only) with their
// modes and groups, and the app tokens. Checked beyond the schema here so errors name the field.
import { execFile } from 'node:child_process'
import fs from 'node:fs/promises'
import path from 'node:path'
import { ConfigError } from './errors.js'

/** the longest socket path accepted (Unix sockets allow 107 bytes; the server needs a few more to bind privately) */
export const MAX_SOCKET_PATH_BYTES = 100

export const SOCKET_DEFAULTS = {
  adminSocketMode: 0o600,
  readSocketMode: 0o660,
  readSocketName: 'admin-read.sock'
} as const

/** a group as configured: a name, or a numeric gid */
export type GroupSpec = string | number

/** the socket keys of the config, resolved */
export interface SocketConfig {
  adminSocket: string
  /** permission bits of the full admin socket; never any for others */
  adminSocketMode: number
  /** group the full admin socket is given; default the agent's own */
  adminSocketGroup?: GroupSpec
  /** the read-only admin socket; undefined when turned off (`"readSocket": false`) */
  readSocket?: string
  readSocketMode: number
  readSocketGroup?: GroupSpec
}

/** Checks a socket path's length; `field` names it in the error. */
export function checkSocketPath (file: string, field: string, p: string): string {
  const bytes = Buffer.byteLength(p)
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new ConfigError(file, `socket path is ${bytes} bytes long; Unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}`, field)
  }
  return p
}

/** `"0600"` or `"600"` to 0o600; the owner must be able to read and write, `noOthers` refuses any bit for others */
function parseMode (file: string, field: string, raw: unknown, fallback: number, noOthers: boolean): number {
  if (raw == null) return fallback
  if (typeof raw !== 'string' || !/^0?[0-7]{3}$/.test(raw)) {
    throw new ConfigError(file, `must be an octal mode as a string, such as "0600" (got ${JSON.stringify(raw)})`, field)
  }
  const mode = parseInt(raw, 8)
  if ((mode & 0o600) !== 0o600) throw new ConfigError(file, `${raw} does not let the agent's user read and write the socket: the owner digit must be 6 or 7`, field)
  if (noOthers && (mode & 0o007) !== 0) {
    throw new ConfigError(file, `${raw} opens the full admin socket to every local user: the last digit must be 0 (give the read-only socket to others instead)`, field)
  }
  return mode
}

function parseGroup (file: string, field: string, raw: unknown): GroupSpec | undefined {
  if (raw == null) return undefined
  if (typeof raw === 'number') return raw
  if (/^\d+$/.test(raw as string)) return Number(raw)
  if (!/^[A-Za-z_][A-Za-z0-9._-]*\$?$/.test(raw as string)) throw new ConfigError(file, `not a group name or gid: ${JSON.stringify(raw)}`, field)
  return raw as string
}

/** The socket keys of a schema-checked config object, with defaults and absolute paths. */
export function parseSockets (c: Record<string, any>, file: string, dataDir: string, abs: (p: string) => string): SocketConfig {
  const adminSocket = checkSocketPath(file, 'adminSocket', c.adminSocket != null ? abs(c.adminSocket) : path.join(dataDir, 'admin.sock'))
  if (c.readSocket === true) throw new ConfigError(file, 'must be a socket path, or false to turn the read-only socket off', 'readSocket')
  const off = c.readSocket === false || c.readSocket === null
  const readSocket = off
    ? undefined
    : checkSocketPath(file, 'readSocket', c.readSocket != null ? abs(c.readSocket) : path.join(dataDir, SOCKET_DEFAULTS.readSocketName))
  if (readSocket === adminSocket) throw new ConfigError(file, 'must differ from adminSocket', 'readSocket')
  const out: SocketConfig = {
    adminSocket,
    adminSocketMode: parseMode(file, 'adminSocketMode', c.adminSocketMode, SOCKET_DEFAULTS.adminSocketMode, true),
    readSocketMode: parseMode(file, 'readSocketMode', c.readSocketMode, SOCKET_DEFAULTS.readSocketMode, false)
  }
  const adminGroup = parseGroup(file, 'adminSocketGroup', c.adminSocketGroup)
  const readGroup = parseGroup(file, 'readSocketGroup', c.readSocketGroup)
  if (adminGroup != null) out.adminSocketGroup = adminGroup
  if (readSocket != null) out.readSocket = readSocket
  if (readGroup != null) out.readSocketGroup = readGroup
  return out
}

/** `apps.tokens`: app name to the absolute path of its token file; undefined when the key is absent */
export function parseAppTokens (file: string, raw: unknown, abs: (p: string) => string): Record<string, string> | undefined {
  if (raw == null) return undefined
  const out: Record<string, string> = {}
  for (const [app, p] of Object.entries(raw as Record<string, string>)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(app)) {
      throw new ConfigError(file, `${JSON.stringify(app)} is not an app name: a letter or digit, then letters, digits, ".", "_" or "-", at most 64 in all`, `apps.tokens.${app}`)
    }
    out[app] = abs(p)
  }
  return out
}

async function getent (name: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    execFile('getent', ['group', name], { timeout: 10_000 }, (err: any, stdout) => {
      if (err == null) resolve(stdout)
      else if (err.code === 2) resolve('') // no such group
      else if (err.code === 'ENOENT') resolve(undefined) // no getent here
      else reject(err)
    })
  })
}

/**
 * The gid of a configured group: a number as is, a name through `getent group` (so NSS groups
 * count), else /etc/group. Throws ConfigError naming `field` for a group that does not exist.
 */
export async function resolveGroup (file: string, field: string, group: GroupSpec | undefined): Promise<number | undefined> {
  if (group == null || typeof group === 'number') return group
  let text = await getent(group)
  if (text == null) text = await fs.readFile('/etc/group', 'utf8').catch(() => '')
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':')
    if (name === group && /^\d+$/.test(gid ?? '')) return Number(gid)
  }
  throw new ConfigError(file, `no group named ${JSON.stringify(group)} on this host`, field)
}
