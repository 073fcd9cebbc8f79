// Who restored entries belong to, and which of their mode bits they keep. Owners are applied only
// when the restore runs as root and was not told `noOwner`: by the recorded name where the
// restoring host has it, else by the recorded number. Setuid, setgid and sticky bits are dropped
// unless `keepSpecialBits`; even then setuid is dropped from an entry whose user was not applied,
// and setgid from one whose group was not.
import { readOwnerNames } from '../capture/index.js'
import type { OwnerFields, OwnerNames } from '../capture/index.js'

const SETUID = 0o4000
const SETGID = 0o2000

export interface OwnerInit {
  /** do not apply owners even as root */
  noOwner?: boolean
  /** keep setuid, setgid and sticky bits (setuid and setgid only where the owner was applied) */
  keepSpecialBits?: boolean
}

/** what to give one entry: the ids to chown to (undefined: left as created) and its mode */
export interface Ownership { uid?: number, gid?: number, mode: number }

export class OwnerPolicy {
  private constructor (
    /** whether owners are applied at all */
    readonly apply: boolean,
    private readonly keepSpecialBits: boolean,
    private readonly names: OwnerNames | undefined
  ) {}

  /** `uid` is the restoring process's user ID (process.getuid) */
  static async create (init: OwnerInit, uid: number | undefined): Promise<OwnerPolicy> {
    const apply = init.noOwner !== true && uid === 0
    return new OwnerPolicy(apply, init.keepSpecialBits === true, apply ? await readOwnerNames() : undefined)
  }

  of (owner: OwnerFields, mode: number): Ownership {
    const out: Ownership = { mode: mode & (this.keepSpecialBits ? 0o7777 : 0o777) }
    if (this.apply && this.names != null) {
      const uid = (owner.user != null ? this.names.userId(owner.user) : undefined) ?? owner.uid
      const gid = (owner.group != null ? this.names.groupId(owner.group) : undefined) ?? owner.gid
      if (uid != null) out.uid = uid
      if (gid != null) out.gid = gid
    }
    if (out.uid == null) out.mode &= ~SETUID
    if (out.gid == null) out.mode &= ~SETGID
    return out
  }

  /** the ids for chown: -1 leaves one as it is; undefined when there is nothing to change */
  static chownIds (o: Ownership): [number, number] | undefined {
    if (o.uid == null && o.gid == null) return undefined
    return [o.uid ?? -1, o.gid ?? -1]
  }
}

/**
 * Gives an entry its owner with `chown` (before its mode: chown clears setuid and setgid) and
 * answers the mode to set. Where the file system will not take the owner (EPERM, EINVAL: root
 * squashed, an id it cannot store), the entry stays as created and loses setuid and setgid.
 */
export async function applyOwner (o: Ownership, chown: (uid: number, gid: number) => Promise<void>, onRefused: (err: Error) => void): Promise<number> {
  const ids = OwnerPolicy.chownIds(o)
  if (ids == null) return o.mode
  try {
    await chown(ids[0], ids[1])
    return o.mode
  } catch (err: any) {
    if (err.code !== 'EPERM' && err.code !== 'EINVAL') throw err
    onRefused(err)
    return o.mode & ~(SETUID | SETGID)
  }
}
