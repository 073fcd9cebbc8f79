// User and group names of this host, from /etc/passwd and /etc/group: numbers to names for
// capture, names to numbers for restore. Each file is read once, at most MAX_OWNER_FILE_BYTES
// of it; lines past that, and lines that are not `name:x:number:...`, are ignored. A name not
// found here is simply not known (capture records the number alone, restore uses the number).
import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'

/** the most of /etc/passwd or /etc/group read */
export const MAX_OWNER_FILE_BYTES = 4 * 1024 * 1024
/** longest user or group name recorded in a manifest (and accepted from one) */
export const MAX_OWNER_NAME_BYTES = 256

export interface OwnerFiles {
  /** default /etc/passwd */
  passwd?: string
  /** default /etc/group */
  group?: string
}

export interface OwnerNames {
  userName: (uid: number) => string | undefined
  groupName: (gid: number) => string | undefined
  userId: (name: string) => number | undefined
  groupId: (name: string) => number | undefined
}

interface Table { byId: Map<number, string>, byName: Map<string, number> }

/** the leading complete lines of a file, at most `max` bytes of it; '' when it cannot be read */
async function readBounded (file: string, max: number): Promise<string> {
  let handle
  try {
    handle = await fs.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK)
  } catch {
    return ''
  }
  try {
    const st = await handle.stat()
    if (!st.isFile()) return ''
    const buf = Buffer.alloc(Math.min(max, st.size))
    let at = 0
    while (at < buf.byteLength) {
      const { bytesRead } = await handle.read(buf, at, buf.byteLength - at, at)
      if (bytesRead === 0) break
      at += bytesRead
    }
    let text = buf.subarray(0, at).toString('utf8')
    // a file cut short at the limit loses its last, partial line
    if (at === max && st.size > max) text = text.slice(0, Math.max(0, text.lastIndexOf('\n')))
    return text
  } catch {
    return ''
  } finally {
    await handle.close()
  }
}

/** `name:password:number:...` lines; the first line wins for a name and for a number */
export function parseOwnerTable (text: string): Table {
  const table: Table = { byId: new Map(), byName: new Map() }
  for (const line of text.split('\n')) {
    const fields = line.split(':')
    if (fields.length < 3) continue
    const [name, , num] = fields
    if (name === '' || name.startsWith('#') || name.startsWith('+') || name.startsWith('-')) continue
    if (Buffer.byteLength(name) > MAX_OWNER_NAME_BYTES || name.includes('\0')) continue
    if (!/^[0-9]{1,10}$/.test(num)) continue
    const id = Number(num)
    if (id > 0xffffffff) continue
    if (!table.byId.has(id)) table.byId.set(id, name)
    if (!table.byName.has(name)) table.byName.set(name, id)
  }
  return table
}

/** reads this host's user and group names once */
export async function readOwnerNames (files: OwnerFiles = {}): Promise<OwnerNames> {
  const [users, groups] = await Promise.all([
    readBounded(files.passwd ?? '/etc/passwd', MAX_OWNER_FILE_BYTES).then(parseOwnerTable),
    readBounded(files.group ?? '/etc/group', MAX_OWNER_FILE_BYTES).then(parseOwnerTable)
  ])
  return {
    userName: uid => users.byId.get(uid),
    groupName: gid => groups.byId.get(gid),
    userId: name => users.byName.get(name),
    groupId: name => groups.byName.get(name)
  }
}

/** the owner fields for a captured file: numbers always, names where this host has them */
export function ownerOf (st: { uid: number, gid: number }, names: OwnerNames): { uid: number, gid: number, user?: string, group?: string } {
  const out: { uid: number, gid: number, user?: string, group?: string } = { uid: st.uid, gid: st.gid }
  const user = names.userName(st.uid)
  const group = names.groupName(st.gid)
  if (user != null) out.user = user
  if (group != null) out.group = group
  return out
}
