import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import picomatch from 'picomatch'
import { CustomProgressEvent, type ProgressOptions, type ProgressEvent } from 'progress-events'
import { RAW, cidForBytes } from '../store/index.js'
import { Chunker, type ChunkerOptions } from './chunker.js'
import { CHUNKS_INLINE, putChunkList, putDir, putNode, readDir, readRoot, type Chunk, type Entry, type RootNode } from './manifest.js'
import type { Blocks } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export { Chunker, type ChunkerOptions } from './chunker.js'
export { InvalidManifestError } from './errors.js'
export * from './manifest.js'

const log = logger('snapmesh:capture')
const READ_BUFFER = 1024 * 1024

export interface SourceSpec { name: string, path: string, exclude?: string[] }

export interface CaptureStats {
  files: number
  dirs: number
  symlinks: number
  bytes: number
  filesRead: number
  filesReused: number
  bytesRead: number
  chunks: number
  newChunks: number
  newBytes: number
  durationMs: number
}

export interface CaptureProblem { source: string, path: string, message: string }

export interface CaptureResult { root: CID, stats: CaptureStats, problems: CaptureProblem[] }

export type CaptureProgressEvents = ProgressEvent<'capture:file', { source: string, path: string, bytes: number }>

export interface CaptureInit {
  peerId: string
  name: string
  sources: SourceSpec[]
  /** this node's previous manifest root: unchanged files reuse its chunk lists unread */
  previous?: CID
  chunker?: ChunkerOptions
  clock?: () => number
}

/**
 * Records every source into the block store: chunks first, then file and directory nodes bottom
 * up, then the root, so that a node is stored only after everything it links to.
 */
export async function capture (components: { blocks: Blocks }, init: CaptureInit, options: AbortOptions & ProgressOptions<CaptureProgressEvents> = {}): Promise<CaptureResult> {
  const clock = init.clock ?? Date.now
  const started = clock()
  const stats: CaptureStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0, filesRead: 0, filesReused: 0, bytesRead: 0, chunks: 0, newChunks: 0, newBytes: 0, durationMs: 0 }
  const problems: CaptureProblem[] = []
  const readBuffer = Buffer.allocUnsafe(READ_BUFFER)
  const { blocks } = components

  let previousSources = new Map<string, CID>()
  if (init.previous != null) {
    try {
      const root = await readRoot(blocks, init.previous, options)
      previousSources = new Map(root.sources.filter(s => s.dir != null).map(s => [s.name, s.dir as CID]))
    } catch (err: any) {
      log('previous root %s unusable, reading everything: %s', init.previous, err.message)
    }
  }

  const storeFile = async (abs: string): Promise<{ chunks: Chunk[], size: number }> => {
    const fh = await fs.open(abs, 'r')
    const chunker = new Chunker(init.chunker)
    const chunks: Chunk[] = []
    let size = 0
    const put = async (chunk: Buffer): Promise<void> => {
      const cid = cidForBytes(chunk, RAW)
      if (await blocks.put(cid, chunk, options)) {
        stats.newChunks++
        stats.newBytes += chunk.length
      }
      stats.chunks++
      chunks.push([cid, chunk.length])
    }
    try {
      while (true) {
        options.signal?.throwIfAborted()
        const { bytesRead } = await fh.read(readBuffer, 0, READ_BUFFER, null)
        if (bytesRead === 0) break
        size += bytesRead
        for (const c of chunker.push(readBuffer.subarray(0, bytesRead))) await put(c)
      }
      const last = chunker.end()
      if (last != null) await put(last)
    } finally {
      await fh.close()
    }
    stats.bytesRead += size
    return { chunks, size }
  }

  const walk = async (source: SourceSpec, isExcluded: (rel: string) => boolean, abs: string, rel: string, prevDir?: CID): Promise<CID> => {
    const previous = new Map<string, Entry>()
    if (prevDir != null) {
      try {
        for await (const e of readDir(blocks, prevDir, options)) previous.set(e.name, e)
      } catch (err: any) {
        log('previous directory %s unusable: %s', rel, err.message)
      }
    }
    const names = (await fs.readdir(abs)).sort()
    const entries: Entry[] = []
    for (const name of names) {
      options.signal?.throwIfAborted()
      const childRel = rel === '' ? name : `${rel}/${name}`
      if (isExcluded(childRel)) continue
      const childAbs = path.join(abs, name)
      try {
        const st = await fs.lstat(childAbs, { bigint: false })
        const base = { name, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs }
        const prev = previous.get(name)
        if (st.isSymbolicLink()) {
          entries.push({ ...base, kind: 'symlink', target: await fs.readlink(childAbs) })
          stats.symlinks++
        } else if (st.isDirectory()) {
          const dir = await walk(source, isExcluded, childAbs, childRel, prev?.kind === 'dir' ? prev.dir : undefined)
          entries.push({ ...base, kind: 'dir', dir })
          stats.dirs++
        } else if (st.isFile()) {
          const unchanged = prev?.kind === 'file' && prev.size === st.size && prev.mtimeMs === st.mtimeMs && prev.ino === st.ino && prev.dev === st.dev
          const entry: Entry = { ...base, kind: 'file', size: st.size, ino: st.ino, dev: st.dev }
          if (unchanged) {
            if (prev.chunks != null) entry.chunks = prev.chunks
            if (prev.chunkList != null) entry.chunkList = prev.chunkList
            stats.filesReused++
          } else {
            const { chunks, size } = await storeFile(childAbs)
            entry.size = size
            if (chunks.length > CHUNKS_INLINE) entry.chunkList = await putChunkList(blocks, chunks, options)
            else entry.chunks = chunks
            stats.filesRead++
          }
          entries.push(entry)
          stats.files++
          stats.bytes += entry.size ?? 0
          options.onProgress?.(new CustomProgressEvent('capture:file', { source: source.name, path: childRel, bytes: entry.size ?? 0 }))
        } else {
          problems.push({ source: source.name, path: childRel, message: 'skipped: not a regular file, directory or symlink' })
        }
      } catch (err: any) {
        if (options.signal?.aborted === true) throw err
        problems.push({ source: source.name, path: childRel, message: `${String(err.code ?? 'error')}: ${String(err.message)}` })
      }
    }
    return putDir(blocks, entries, options)
  }

  const sources: RootNode['sources'] = []
  for (const source of init.sources) {
    const matchers = (source.exclude ?? []).map(g => picomatch(g, { dot: true }))
    const isExcluded = (rel: string): boolean => matchers.some(m => m(rel))
    try {
      const st = await fs.stat(source.path)
      if (!st.isDirectory()) throw Object.assign(new Error(`${source.path} is not a directory`), { code: 'ENOTDIR' })
      const dir = await walk(source, isExcluded, source.path, '', previousSources.get(source.name))
      sources.push({ name: source.name, path: source.path, dir, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs })
    } catch (err: any) {
      if (options.signal?.aborted === true) throw err
      const message = err.code === 'ENOENT' ? `source path ${source.path} does not exist` : `cannot read source ${source.path}: ${String(err.message)}`
      sources.push({ name: source.name, path: source.path, error: message })
      problems.push({ source: source.name, path: '', message })
    }
  }
  const root: RootNode = { v: 1, type: 'snapmesh/root', peerId: init.peerId, name: init.name, time: clock(), sources }
  const rootCid = await putNode(blocks, root, options)
  stats.durationMs = clock() - started
  return { root: rootCid, stats, problems }
}
