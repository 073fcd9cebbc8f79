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
