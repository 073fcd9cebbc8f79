import fs from 'node:fs/promises'

/** Deterministic pseudo-random bytes (xorshift32) so failures reproduce. */
export function seededBytes (length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  const words = new Uint32Array(out.buffer, 0, Math.floor(length / 4))
  let x = (seed >>> 0) || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    words[i] = x
  }
  for (let i = words.length * 4; i < length; i++) out[i] = (i * 131 + seed) & 0xff
  return out
}

/** Writes `size` seeded bytes to `file` in 1 MiB pieces, never holding the whole file. */
export async function writeSeededFile (file: string, size: number, seed: number): Promise<void> {
  const handle = await fs.open(file, 'w')
  try {
    const piece = 1024 * 1024
    for (let at = 0, i = 0; at < size; at += piece, i++) {
      await handle.write(seededBytes(Math.min(piece, size - at), seed * 7919 + i))
    }
  } finally {
    await handle.close()
  }
}

export interface TreeItem { kind: 'file' | 'dir' | 'symlink', mode: number, mtimeUs: number, size?: number, sha256?: string, target?: string }

/** Every path under `root` (relative, '/'-separated) with what a restore must bring back. */
export async function describeTree (root: string): Promise<Map<string, TreeItem>> {
  const { createHash } = await import('node:crypto')
  const path = await import('node:path')
  const out = new Map<string, TreeItem>()
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of (await fs.readdir(abs)).sort()) {
      const childAbs = path.join(abs, name)
      const childRel = rel === '' ? name : `${rel}/${name}`
      const st = await fs.lstat(childAbs)
      // mtimes are compared to the microsecond, the precision utimes offers
      const base = { mode: st.mode & 0o7777, mtimeUs: Math.round(st.mtimeMs * 1000) }
      if (st.isDirectory()) {
        await walk(childAbs, childRel)
        out.set(childRel, { ...base, kind: 'dir' })
      } else if (st.isSymbolicLink()) {
        out.set(childRel, { ...base, mode: 0, kind: 'symlink', target: await fs.readlink(childAbs) })
      } else {
        const hash = createHash('sha256')
        const handle = await fs.open(childAbs, 'r')
        for await (const piece of handle.createReadStream()) hash.update(piece)
        out.set(childRel, { ...base, kind: 'file', size: st.size, sha256: hash.digest('hex') })
      }
    }
  }
  await walk(root, '')
  return out
}
