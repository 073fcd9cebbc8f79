import crypto from 'node:crypto'

export interface ChunkerOptions {
  minSize?: number
  avgSize?: number
  maxSize?: number
}

export const DEFAULT_MIN = 256 * 1024
export const DEFAULT_AVG = 1024 * 1024
export const DEFAULT_MAX = 4 * 1024 * 1024

/**
 * The Gear table: 256 32-bit values from sha256("snapmesh/gear/v1/<i>"). It is part of the
 * format: changing it changes every chunk boundary, and so every CID.
 */
const GEAR = (() => {
  const t = new Int32Array(256)
  for (let i = 0; i < 256; i++) t[i] = crypto.createHash('sha256').update(`snapmesh/gear/v1/${i}`).digest().readInt32BE(0)
  return t
})()

/** `bits` one-bits in the top of a 32-bit word: the Gear hash's best-mixed bits */
function topMask (bits: number): number {
  return (((2 ** bits) - 1) * (2 ** (32 - bits))) | 0
}

/**
 * Content-defined chunking in the manner of FastCDC: a Gear rolling hash, no cut before `minSize`,
 * a stricter mask before `avgSize` and a looser one after it (normalized chunking), and a forced
 * cut at `maxSize`. Streaming: feed buffers with `push`, collect chunks, call `end` for the last.
 * Memory stays at one `maxSize` buffer whatever the input size.
 */
export class Chunker {
  readonly minSize: number
  readonly avgSize: number
  readonly maxSize: number
  private readonly maskS: number
  private readonly maskL: number
  private readonly buf: Buffer
  private len = 0
  private pos = 0
  private hash = 0

  constructor (options: ChunkerOptions = {}) {
    this.minSize = options.minSize ?? DEFAULT_MIN
    this.avgSize = options.avgSize ?? DEFAULT_AVG
    this.maxSize = options.maxSize ?? DEFAULT_MAX
    if (!(this.minSize > 0 && this.minSize <= this.avgSize && this.avgSize <= this.maxSize)) {
      throw new RangeError(`chunk sizes must satisfy 0 < min <= avg <= max (got ${this.minSize}, ${this.avgSize}, ${this.maxSize})`)
    }
    const bits = Math.round(Math.log2(this.avgSize - this.minSize + 1))
    this.maskS = topMask(Math.min(31, bits + 2))
    this.maskL = topMask(Math.max(1, bits - 2))
    this.buf = Buffer.allocUnsafe(this.maxSize)
    this.pos = this.minSize
  }

  /** Adds bytes; returns the chunks that are complete (copies the caller may keep). */
  push (data: Uint8Array): Buffer[] {
    const out: Buffer[] = []
    let off = 0
    while (off < data.length) {
      const n = Math.min(data.length - off, this.maxSize - this.len)
      this.buf.set(data.subarray(off, off + n), this.len)
      this.len += n
      off += n
      let cut: number
      while ((cut = this.scan()) > 0) out.push(this.take(cut))
    }
    return out
  }

  /** The last chunk, if any bytes are left. */
  end (): Buffer | undefined {
    if (this.len === 0) return undefined
    return this.take(this.len)
  }

  /** a cut position in buf, or 0 when more data is needed */
  private scan (): number {
    const buf = this.buf
    const len = this.len
    const avg = this.avgSize
    let h = this.hash
    let i = this.pos
    for (; i < len; i++) {
      h = ((h << 1) + GEAR[buf[i]]) | 0
      if ((h & (i < avg ? this.maskS : this.maskL)) === 0) {
        return i + 1
      }
    }
    this.hash = h
    this.pos = Math.max(i, this.minSize)
    return len >= this.maxSize ? this.maxSize : 0
  }

  private take (cut: number): Buffer {
    const chunk = Buffer.from(this.buf.subarray(0, cut))
    this.buf.copyWithin(0, cut, this.len)
    this.len -= cut
    this.pos = this.minSize
    this.hash = 0
    return chunk
  }
}
