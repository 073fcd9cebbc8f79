import { InvalidChunkerOptionsError } from './errors.js'

export interface ChunkerOptions {
  /** no cut before this many bytes (default 256 KiB) */
  minSize?: number
  /** the size chunks gather around (default 1 MiB) */
  avgSize?: number
  /** a cut is forced here (default 4 MiB) */
  maxSize?: number
}

export const DEFAULT_MIN_SIZE = 256 * 1024
export const DEFAULT_AVG_SIZE = 1024 * 1024
export const DEFAULT_MAX_SIZE = 4 * 1024 * 1024

/** the Gear hash forgets a byte after this many more: the smallest sensible minimum */
const WINDOW = 32

/**
 * The seed of the Gear table. The table is part of the format: another seed or generator moves
 * every chunk boundary, and so changes every chunk CID. Never change it.
 */
export const GEAR_SEED = 0x736e6170

function makeGearTable (seed: number): Uint32Array {
  // mulberry32: small, well mixed and easy to reproduce in any language
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
  const table = new Uint32Array(256)
  for (let i = 0; i < 256; i++) table[i] = next()
  return table
}

/** The Gear table (256 constant 32-bit values). */
export const GEAR: Readonly<Uint32Array> = makeGearTable(GEAR_SEED)

/**
 * A mask of `ones` one-bits at the top of a 32-bit word, where the Gear hash has mixed in the most
 * bytes (bit k of the hash depends on the last k + 1 bytes only).
 */
function topMask (ones: number): number {
  return ones >= 32 ? -1 : (((2 ** ones) - 1) * (2 ** (32 - ones))) | 0
}

export interface ResolvedChunkerOptions { minSize: number, avgSize: number, maxSize: number }

export function resolveChunkerOptions (options: ChunkerOptions = {}): ResolvedChunkerOptions {
  const minSize = options.minSize ?? DEFAULT_MIN_SIZE
  const avgSize = options.avgSize ?? DEFAULT_AVG_SIZE
  const maxSize = options.maxSize ?? DEFAULT_MAX_SIZE
  for (const [field, value] of [['minSize', minSize], ['avgSize', avgSize], ['maxSize', maxSize]] as const) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidChunkerOptionsError(`chunker ${field} must be a positive integer, got ${String(value)}`)
  }
  if (minSize < WINDOW) throw new InvalidChunkerOptionsError(`chunker minSize must be at least ${WINDOW}, got ${minSize}`)
  if (!(minSize < avgSize && avgSize < maxSize)) {
    throw new InvalidChunkerOptionsError(`chunker sizes must satisfy minSize < avgSize < maxSize, got ${minSize}, ${avgSize}, ${maxSize}`)
  }
  if (maxSize > DEFAULT_MAX_SIZE) throw new InvalidChunkerOptionsError(`chunker maxSize must be at most ${DEFAULT_MAX_SIZE} (the largest chunk a manifest may reference), got ${maxSize}`)
  return { minSize, avgSize, maxSize }
}

/**
 * Content-defined chunking in the FastCDC manner. A Gear rolling hash (`h = (h << 1) + GEAR[byte]`
 * over 32-bit words) is computed from `minSize` bytes into a chunk; up to `avgSize` a cut needs
 * log2(avg) + 2 zero bits under the top mask, after it log2(avg) - 2 (normalized chunking, which
 * narrows the size spread); at `maxSize` a cut is forced. The last chunk of a stream may be shorter
 * than `minSize`.
 *
 * Streaming: `push` buffers as they are read and collect the chunks that completed; `end` returns
 * the rest. The chunker keeps references to the pushed buffers only until their bytes are part of
 * a returned chunk, so it holds at most `maxSize` bytes plus one pushed buffer. Callers must not
 * modify a buffer after pushing it.
 */
export class Chunker {
  readonly minSize: number
  readonly avgSize: number
  readonly maxSize: number
  private readonly maskS: number
  private readonly maskL: number
  /** the pieces of the chunk being built */
  private parts: Uint8Array[] = []
  /** bytes in the chunk being built */
  private pos = 0
  private hash = 0

  constructor (options: ChunkerOptions = {}) {
    const o = resolveChunkerOptions(options)
    this.minSize = o.minSize
    this.avgSize = o.avgSize
    this.maxSize = o.maxSize
    const bits = Math.round(Math.log2(this.avgSize))
    this.maskS = topMask(bits + 2)
    this.maskL = topMask(Math.max(1, bits - 2))
  }

  /** Adds bytes; returns the chunks completed by them, in order. */
  push (data: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = []
    let start = 0
    while (start < data.byteLength) {
      const cut = this.scan(data, start)
      if (cut < 0) {
        this.parts.push(start === 0 ? data : data.subarray(start))
        break
      }
      this.parts.push(data.subarray(start, cut))
      out.push(this.take())
      start = cut
    }
    return out
  }

  /** The bytes after the last cut, if there are any. Resets the chunker. */
  end (): Uint8Array | undefined {
    if (this.pos === 0) return undefined
    return this.take()
  }

  /** the index in `data` just after the next cut, or -1 when `data` ends first */
  private scan (data: Uint8Array, start: number): number {
    const end = data.byteLength
    // the chunk holds `base + i` bytes once data[i - 1] is in it
    const base = this.pos - start
    let i = start
    const minEnd = this.minSize - base
    if (i < minEnd) {
      if (minEnd >= end) {
        this.pos = base + end
        return -1
      }
      i = minEnd
    }
    const gear = GEAR
    let h = this.hash
    const avgEnd = this.avgSize - base
    if (i < avgEnd) {
      const mask = this.maskS
      const stop = Math.min(end, avgEnd)
      while (i < stop) {
        h = ((h << 1) + gear[data[i++]]) | 0
        if ((h & mask) === 0) {
          this.pos = base + i
          return i
        }
      }
      if (stop === end) {
        this.pos = base + end
        this.hash = h
        return -1
      }
    }
    const mask = this.maskL
    const maxEnd = this.maxSize - base
    const stop = Math.min(end, maxEnd)
    while (i < stop) {
      h = ((h << 1) + gear[data[i++]]) | 0
      if ((h & mask) === 0) {
        this.pos = base + i
        return i
      }
    }
    if (stop === maxEnd) {
      this.pos = base + i
      return i
    }
    this.pos = base + end
    this.hash = h
    return -1
  }

  private take (): Uint8Array {
    const parts = this.parts
    let chunk: Uint8Array
    if (parts.length === 1) {
      chunk = parts[0]
    } else {
      chunk = new Uint8Array(this.pos)
      let at = 0
      for (const p of parts) {
        chunk.set(p, at)
        at += p.byteLength
      }
    }
    this.parts = []
    this.pos = 0
    this.hash = 0
    return chunk
  }
}

/** Chunks a stream of buffers. */
export async function * chunkStream (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options?: ChunkerOptions): AsyncGenerator<Uint8Array> {
  const chunker = new Chunker(options)
  for await (const buf of source) yield * chunker.push(buf)
  const last = chunker.end()
  if (last != null) yield last
}
