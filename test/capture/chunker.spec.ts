import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Chunker, GEAR, InvalidChunkerOptionsError, chunkStream } from '../../src/capture/index.js'
import type { ChunkerOptions } from '../../src/capture/index.js'
import { RAW, cidForBytes } from '../../src/store/index.js'
import { seededBytes } from './fixtures.js'

const SMALL = { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 }

function chunkAll (data: Uint8Array, options: ChunkerOptions = SMALL, pieces?: number[]): Uint8Array[] {
  const chunker = new Chunker(options)
  const out: Uint8Array[] = []
  if (pieces == null) {
    out.push(...chunker.push(data))
  } else {
    let at = 0
    for (let i = 0; at < data.length; i++) {
      const n = pieces[i % pieces.length]
      out.push(...chunker.push(data.subarray(at, at + n)))
      at += n
    }
  }
  const last = chunker.end()
  if (last != null) out.push(last)
  return out
}

function concat (chunks: Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map(c => Buffer.from(c.buffer, c.byteOffset, c.byteLength)))
}

describe('capture / chunker', () => {
  it('the Gear table is the frozen one of format version 1', () => {
    assert.equal(GEAR.length, 256)
    const digest = createHash('sha256').update(new Uint8Array(GEAR.buffer, GEAR.byteOffset, GEAR.byteLength)).digest('hex')
    assert.equal(digest, 'a8eee9721e0055915345b485cd0fd481d7dc2b15aa0b0adf7eb8f456f3f757ef')
  })

  it('cuts the same data at the same places whatever the sizes of the pieces fed in', () => {
    const data = seededBytes(3 * 1024 * 1024, 1)
    const whole = chunkAll(data).map(c => c.byteLength)
    const small = chunkAll(data, SMALL, [1, 7, 4096, 65_537, 100]).map(c => c.byteLength)
    const again = chunkAll(data).map(c => c.byteLength)
    assert.ok(whole.length > 10)
    assert.deepEqual(small, whole)
    assert.deepEqual(again, whole)
  })

  it('returns exactly the input, with every chunk between min and max (the last may be short)', () => {
    const data = seededBytes(5 * 1024 * 1024 + 123, 2)
    const chunks = chunkAll(data, SMALL, [300_000, 17])
    assert.ok(concat(chunks).equals(Buffer.from(data)))
    chunks.forEach((c, i) => {
      assert.ok(c.byteLength <= SMALL.maxSize, `chunk ${i} is ${c.byteLength} bytes`)
      if (i < chunks.length - 1) assert.ok(c.byteLength >= SMALL.minSize, `chunk ${i} is ${c.byteLength} bytes`)
    })
  })

  it('forces a cut at max on data without content boundaries', () => {
    const zeros = new Uint8Array(SMALL.maxSize * 3 + 10)
    const sizes = chunkAll(zeros, SMALL, [50_000]).map(c => c.byteLength)
    assert.deepEqual(sizes, [SMALL.maxSize, SMALL.maxSize, SMALL.maxSize, 10])
  })

  it('averages near the configured size on random data', () => {
    const data = seededBytes(32 * 1024 * 1024, 3)
    const chunks = chunkAll(data)
    const mean = data.byteLength / chunks.length
    assert.ok(mean > SMALL.avgSize * 0.75 && mean < SMALL.avgSize * 1.5, `mean chunk size ${mean}`)
  })

  it('defaults to 256 KiB / 1 MiB / 4 MiB', () => {
    const chunker = new Chunker()
    assert.deepEqual([chunker.minSize, chunker.avgSize, chunker.maxSize], [256 * 1024, 1024 * 1024, 4 * 1024 * 1024])
  })

  it('an insert near the start of 20 MiB leaves most later chunks unchanged (default sizes)', () => {
    const data = seededBytes(20 * 1024 * 1024, 4)
    const edited = Buffer.concat([Buffer.from(data.subarray(0, 1000)), Buffer.from(seededBytes(100, 99)), Buffer.from(data.subarray(1000))])
    const cids = (chunks: Uint8Array[]): string[] => chunks.map(c => cidForBytes(c, RAW).toString())
    const before = cids(chunkAll(data, {}))
    const after = new Set(cids(chunkAll(edited, {})))
    assert.ok(before.length >= 10, `only ${before.length} chunks`)
    const kept = before.filter(c => after.has(c)).length
    // only the chunk holding the edit (and at most its neighbour) may change
    assert.ok(kept >= before.length - 2, `${kept} of ${before.length} chunks kept`)
  })

  it('chunkStream chunks an async stream the same way', async () => {
    const data = seededBytes(2 * 1024 * 1024, 5)
    async function * pieces (): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < data.length; at += 70_000) yield data.subarray(at, at + 70_000)
    }
    const streamed: number[] = []
    for await (const c of chunkStream(pieces(), SMALL)) streamed.push(c.byteLength)
    assert.deepEqual(streamed, chunkAll(data).map(c => c.byteLength))
  })

  it('refuses inconsistent sizes naming the field', () => {
    assert.throws(() => new Chunker({ minSize: 0 }), (err: any) => err instanceof InvalidChunkerOptionsError && /minSize/.test(err.message))
    assert.throws(() => new Chunker({ minSize: 4096, avgSize: 1024, maxSize: 8192 }), InvalidChunkerOptionsError)
    assert.throws(() => new Chunker({ maxSize: 8 * 1024 * 1024 }), (err: any) => err instanceof InvalidChunkerOptionsError && /maxSize/.test(err.message))
  })
})
