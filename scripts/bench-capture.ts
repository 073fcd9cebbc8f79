// In-process benchmark of capture and restore on a seeded data set:
//   node dist/scripts/bench-capture.js [total MiB, default 256]
// Prints first-capture MB/s, no-change capture time, restore MB/s and the peak RSS of each step.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { capture } from '../src/capture/index.js'
import { restore } from '../src/restore/index.js'
import { FsBlockStore } from '../src/store/index.js'

const MiB = 1024 * 1024

function xorshift (seed: number): () => number {
  let x = (seed >>> 0) || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

async function writeFile (file: string, size: number, next: () => number): Promise<void> {
  const handle = await fs.open(file, 'w')
  try {
    for (let at = 0; at < size; at += MiB) {
      const piece = new Uint8Array(Math.min(MiB, size - at))
      const words = new Uint32Array(piece.buffer, 0, piece.length >>> 2)
      for (let i = 0; i < words.length; i++) words[i] = next()
      await handle.write(piece)
    }
  } finally {
    await handle.close()
  }
}

/** a mix of many small files and a few large ones, about `total` bytes */
async function generate (root: string, total: number): Promise<{ files: number, bytes: number }> {
  const next = xorshift(0x5eed)
  let bytes = 0
  let files = 0
  for (let d = 0; bytes < total; d++) {
    const dir = path.join(root, `dir-${d}`)
    await fs.mkdir(dir, { recursive: true })
    for (let f = 0; f < 50 && bytes < total; f++) {
      const r = next() % 100
      const size = r < 80 ? next() % (16 * 1024) : r < 97 ? next() % (2 * MiB) : 16 * MiB + next() % (16 * MiB)
      const n = Math.min(size, total - bytes)
      await writeFile(path.join(dir, `file-${f}.bin`), n, next)
      bytes += n
      files++
    }
  }
  return { files, bytes }
}

async function measure<T> (fn: () => Promise<T>): Promise<{ value: T, seconds: number, peakRssMb: number }> {
  let peak = process.memoryUsage().rss
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 10)
  const start = process.hrtime.bigint()
  try {
    const value = await fn()
    return { value, seconds: Number(process.hrtime.bigint() - start) / 1e9, peakRssMb: Math.max(peak, process.memoryUsage().rss) / MiB }
  } finally {
    clearInterval(timer)
  }
}

async function main (): Promise<void> {
  const totalMb = Number(process.argv[2] ?? 256)
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-bench-capture-'))
  try {
    const src = path.join(dir, 'data')
    const { files, bytes } = await generate(src, totalMb * MiB)
    const mb = bytes / MiB
    console.log(`data set: ${files} files, ${mb.toFixed(0)} MiB in ${src}`)
    const blocks = new FsBlockStore({ path: path.join(dir, 'store') })
    await blocks.start()
    const sources = [{ name: 'data', path: src }]
    const first = await measure(async () => capture({ blocks }, { peerId: 'bench', name: 'bench', sources }))
    const again = await measure(async () => capture({ blocks }, { peerId: 'bench', name: 'bench', sources, previous: first.value.root }))
    const back = await measure(async () => restore({ blocks }, { root: first.value.root, target: path.join(dir, 'restored') }))
    const rows = [
      ['first capture', first.seconds, mb / first.seconds, first.peakRssMb],
      ['no-change capture', again.seconds, mb / again.seconds, again.peakRssMb],
      ['restore', back.seconds, mb / back.seconds, back.peakRssMb]
    ] as const
    console.log('step                 seconds      MB/s   peak RSS MiB')
    for (const [step, s, rate, rss] of rows) console.log(`${step.padEnd(20)} ${s.toFixed(2).padStart(8)} ${rate.toFixed(1).padStart(9)} ${rss.toFixed(0).padStart(14)}`)
    console.log(`no-change capture read ${again.value.stats.filesRead} files and reused ${again.value.stats.filesReused}`)
    await blocks.stop()
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})
