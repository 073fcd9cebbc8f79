import { constants as fsConstants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import PQueue from 'p-queue'
import picomatch from 'picomatch'
import { CustomProgressEvent } from 'progress-events'
import { RAW, cidForBytes } from '../store/index.js'
import { Chunker, resolveChunkerOptions } from './chunker.js'
import { CommandFailedError, CommandTimeoutError, MESSAGE_STDERR_BYTES, checkHooks, commandArgv, describeOutcome, quoteStderr, runPostHooks, runPreHooks, startCommand, succeeded, withPostFailures } from '../hooks/index.js'
import { InvalidSourceError } from './errors.js'
import { ownerOf, readOwnerNames } from './owners.js'
import { MAX_INLINE_CHUNKS, ROOT_TYPE, compareNames, encodeChunkListPages, encodeDirPages, encodeNode, readChunks, readDir, readRoot } from './manifest.js'
import type { ChunkerOptions } from './chunker.js'
import type { ChunkRef, EncodedBlock, Entry, FileEntry, RootNode, SourceRecord } from './manifest.js'
import type { Command, CommandOutcome, HookSpec } from '../hooks/index.js'
import type { Blocks } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { Stats } from 'node:fs'
import type { CID } from 'multiformats/cid'
import type { ProgressEvent, ProgressOptions } from 'progress-events'

export { Chunker, chunkStream, resolveChunkerOptions, GEAR, GEAR_SEED, DEFAULT_MIN_SIZE, DEFAULT_AVG_SIZE, DEFAULT_MAX_SIZE } from './chunker.js'
export type { ChunkerOptions, ResolvedChunkerOptions } from './chunker.js'
export { InvalidChunkerOptionsError, InvalidManifestError, InvalidSourceError } from './errors.js'
export * from './manifest.js'
export { MAX_OWNER_FILE_BYTES, MAX_OWNER_NAME_BYTES, ownerOf, parseOwnerTable, readOwnerNames } from './owners.js'
export type { OwnerFiles, OwnerNames } from './owners.js'

const log = logger('snapmesh:capture')

/** bytes asked for per read; a fresh buffer each time, since chunks may point into it */
const READ_SIZE = 1024 * 1024
/** chunk writes running at once */
const PUT_CONCURRENCY = 4
/** chunk writes waiting for a slot before reading pauses; with the running ones this bounds memory */
const PUT_WAITING = 2

interface SourceSpecBase {
  /** the name the source is stored and restored under: one path component */
  name: string
  /** folder the hooks and the command run in; default the agent's working folder */
  cwd?: string
  /** run before the capture (see src/hooks) */
  pre?: HookSpec
  /** run after the capture, whenever `pre` ran */
  post?: HookSpec
}

/** A folder, walked. */
export interface FolderSourceSpec extends SourceSpecBase {
  /** folder to capture */
  path: string
  /** picomatch globs matched (with `dot: true`) against paths relative to the source folder; a matching folder is skipped whole */
  exclude?: string[]
  /**
   * read every file, never reuse a chunk list from the previous snapshot: for folders written
   * afresh for each snapshot, where a recycled inode with the same size and mtime would otherwise
   * pass for an unchanged file
   */
  fresh?: boolean
  command?: undefined
}

/** A command whose standard output is stored as one file, `<source>/<output>` (a database dump). */
export interface CommandSourceSpec extends SourceSpecBase {
  /** an argv list run without a shell, or a string run by `/bin/sh -c` */
  command: Command
  /** the file name the output is stored and restored under: one path component; default DEFAULT_COMMAND_OUTPUT */
  output?: string
  /** default DEFAULT_COMMAND_TIMEOUT_SECONDS */
  timeoutSeconds?: number
  path?: undefined
}

export type SourceSpec = FolderSourceSpec | CommandSourceSpec

/** the file a command source's output is restored as, when its spec names none */
export const DEFAULT_COMMAND_OUTPUT = 'stdout'
/** how long a command source may run, when its spec does not say */
export const DEFAULT_COMMAND_TIMEOUT_SECONDS = 3600
/** mode of the stored output file and of its source folder: dumps are often secret */
const COMMAND_FILE_MODE = 0o600
const COMMAND_DIR_MODE = 0o700

export interface CaptureStats {
  files: number
  /** folders, the source folders included */
  dirs: number
  symlinks: number
  /** bytes of file content in the snapshot */
  bytes: number
  /** files whose content was read */
  filesRead: number
  /** files whose chunk list was taken from the previous snapshot without opening them */
  filesReused: number
  bytesRead: number
  /** chunk references of all files in the snapshot */
  chunks: number
  /** chunk writes that stored a chunk the store did not have */
  newChunks: number
  newBytes: number
  durationMs: number
}

export interface CaptureProblem {
  source: string
  /** relative to the source folder; '' for the source folder itself */
  path: string
  message: string
}

export interface CaptureResult { root: CID, stats: CaptureStats, problems: CaptureProblem[] }

export type CaptureProgressEvents = ProgressEvent<'capture:file', { source: string, path: string, bytes: number }>

export interface CaptureComponents {
  blocks: Blocks
}

export interface CaptureInit {
  peerId: string
  /** host name recorded in the root */
  name: string
  sources: SourceSpec[]
  /** this node's previous root: unchanged files (size, mtime, inode and device) reuse their chunk lists unread */
  previous?: CID
  chunker?: ChunkerOptions
  /** milliseconds since the epoch; default Date.now */
  clock?: () => number
  /**
   * true when the caller already ran the sources' pre hooks and will run their post hooks itself
   * (barrier mode). By default capture() runs every pre hook first and every post hook last.
   */
  skipHooks?: boolean
}

function isSingleComponent (name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0')
}

function describeKind (st: Stats): string {
  if (st.isFIFO()) return 'a FIFO'
  if (st.isSocket()) return 'a socket'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  return 'of an unknown kind'
}

function errorText (err: any): string {
  return err?.code != null ? `${String(err.code)}: ${String(err.message)}` : String(err?.message ?? err)
}

/** Writes blocks with bounded concurrency; a failed write fails the whole capture. */
class BlockWriter {
  private readonly queue = new PQueue({ concurrency: PUT_CONCURRENCY })
  failure?: Error

  constructor (private readonly blocks: Blocks, private readonly stats: CaptureStats, private readonly options: AbortOptions) {}

  check (): void {
    this.options.signal?.throwIfAborted()
    if (this.failure != null) throw this.failure
  }

  private track (p: Promise<unknown>): Promise<void> {
    const done = p.then(() => {})
    done.catch((err: Error) => { this.failure ??= err })
    return done
  }

  /** waits for room, then starts writing a chunk; the returned promise settles when it is stored */
  async chunk (cid: CID, bytes: Uint8Array): Promise<{ stored: Promise<void> }> {
    if (this.queue.size >= PUT_WAITING) await this.queue.onSizeLessThan(PUT_WAITING)
    this.check()
    const stored = this.track(this.queue.add(async () => {
      this.check()
      if (await this.blocks.put(cid, bytes, this.options)) {
        this.stats.newChunks++
        this.stats.newBytes += bytes.byteLength
      }
    }))
    return { stored }
  }

  /** writes manifest pages (in the order given) once everything in `after` is stored */
  nodes (pages: EncodedBlock[], after: Array<Promise<void>>): Promise<void> {
    return this.track(Promise.all(after).then(async () => {
      for (const page of pages) {
        this.check()
        await this.queue.add(async () => this.blocks.put(page.cid, page.bytes, this.options))
      }
    }))
  }

  /** stops queued writes and waits for the running ones */
  async drain (): Promise<void> {
    this.queue.clear()
    await this.queue.onIdle()
  }
}

interface Walk {
  source: SourceSpec
  excluded: (rel: string) => boolean
}

/**
 * Captures every source into the block store and returns the manifest root. Order of writes: a
 * file's chunks, then its chunk-list pages, then the directory pages that list it, bottom up,
 * then the root; each block is written only after every block it links to is stored.
 *
 * Per-path trouble (an unreadable folder, a file that vanished or changed kind, a FIFO, socket or
 * device) lands in `problems` and the path is left out; a source that cannot be read at all is
 * recorded with `error` in the root. Failures of the store and aborts reject.
 */
export async function capture (components: CaptureComponents, init: CaptureInit, options: AbortOptions & ProgressOptions<CaptureProgressEvents> = {}): Promise<CaptureResult> {
  checkSources(init.sources)
  resolveChunkerOptions(init.chunker)
  if (init.skipHooks === true) return captureSources(components, init, options)

  // pre hooks clean up after themselves when one fails: only after success are the posts ours to run
  await runPreHooks(init.sources, options)
  let result: CaptureResult
  try {
    result = await captureSources(components, init, options)
  } catch (err) {
    // thaw even when the capture failed or was aborted: no signal, each hook has its own timeout
    throw withPostFailures(err, await runPostHooks(init.sources))
  }
  // the data is captured and good: a post hook that failed is a problem to report, not a failure
  for (const failure of await runPostHooks(init.sources)) {
    result.problems.push({ source: failure.source, path: '', message: clipTail(failure.message, 1000) })
  }
  return result
}

/** keeps the end of a long message (where a command's last words are), marking the cut */
function clipTail (text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max + 1)}`
}

/** Checks every source spec before anything runs; throws InvalidSourceError or InvalidCommandError. */
function checkSources (sources: SourceSpec[]): void {
  const seenNames = new Set<string>()
  for (const source of sources) {
    if (typeof source.name !== 'string' || !isSingleComponent(source.name)) throw new InvalidSourceError(`source name ${JSON.stringify(source.name)} must be a single path component`)
    if (seenNames.has(source.name)) throw new InvalidSourceError(`source name ${JSON.stringify(source.name)} is used twice`)
    seenNames.add(source.name)
    const what = `source ${JSON.stringify(source.name)}`
    if ((source.path == null) === (source.command == null)) throw new InvalidSourceError(`${what} must have exactly one of path and command`)
    if (source.command != null) {
      try {
        commandArgv(source.command)
      } catch (err: any) {
        throw new InvalidSourceError(`${what}: command: ${String(err.message)}`)
      }
      const output = source.output ?? DEFAULT_COMMAND_OUTPUT
      if (typeof output !== 'string' || !isSingleComponent(output) || Buffer.byteLength(output) > 255) throw new InvalidSourceError(`${what}: output ${JSON.stringify(output)} must be a single path component of at most 255 bytes`)
      const t = source.timeoutSeconds
      if (t != null && (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)) throw new InvalidSourceError(`${what}: timeoutSeconds must be a positive number, got ${String(t)}`)
    } else if (typeof source.path !== 'string' || !path.isAbsolute(source.path)) {
      throw new InvalidSourceError(`${what}: path ${JSON.stringify(source.path)} is not absolute`)
    }
    if (source.cwd != null && (typeof source.cwd !== 'string' || !path.isAbsolute(source.cwd))) throw new InvalidSourceError(`${what}: cwd ${JSON.stringify(source.cwd)} is not absolute`)
  }
  checkHooks(sources)
}

/** the capture itself, without hooks */
async function captureSources (components: CaptureComponents, init: CaptureInit, options: AbortOptions & ProgressOptions<CaptureProgressEvents>): Promise<CaptureResult> {
  const clock = init.clock ?? Date.now
  const started = clock()
  const chunkerOptions = resolveChunkerOptions(init.chunker)
  const { blocks } = components
  const stats: CaptureStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0, filesRead: 0, filesReused: 0, bytesRead: 0, chunks: 0, newChunks: 0, newBytes: 0, durationMs: 0 }
  const problems: CaptureProblem[] = []
  const writer = new BlockWriter(blocks, stats, options)
  const signal = options.signal
  const owners = await readOwnerNames()

  let previousDirs = new Map<string, CID>()
  if (init.previous != null) {
    try {
      const prev = await readRoot(blocks, init.previous, options)
      previousDirs = new Map(prev.sources.flatMap(s => s.dir != null ? [[s.name, s.dir] as const] : []))
    } catch (err: any) {
      signal?.throwIfAborted()
      log.error('previous root %s cannot be read, capturing everything afresh: %s', init.previous, err.message)
    }
  }

  const previousEntries = async (dir: CID | undefined, rel: string): Promise<Map<string, Entry>> => {
    const map = new Map<string, Entry>()
    if (dir == null) return map
    try {
      for await (const e of readDir(blocks, dir, options)) map.set(e.name, e)
    } catch (err: any) {
      signal?.throwIfAborted()
      log.error('previous listing of %s cannot be read, reading its files afresh: %s', rel === '' ? '.' : rel, err.message)
      map.clear()
    }
    return map
  }

  const readFile = async (abs: string, st: Stats, entry: FileEntry, waits: Array<Promise<void>>): Promise<string | undefined> => {
    const handle = await fs.open(abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK)
    const refs: ChunkRef[] = []
    const fileWaits: Array<Promise<void>> = []
    let size = 0
    try {
      const opened = await handle.stat()
      if (!opened.isFile() || opened.ino !== st.ino || opened.dev !== st.dev) return 'replaced by something else while being captured'
      const chunker = new Chunker(chunkerOptions)
      const store = async (chunk: Uint8Array): Promise<void> => {
        const cid = cidForBytes(chunk, RAW)
        refs.push([cid, chunk.byteLength])
        fileWaits.push((await writer.chunk(cid, chunk)).stored)
      }
      while (true) {
        writer.check()
        const buf = Buffer.allocUnsafe(READ_SIZE)
        const { bytesRead } = await handle.read(buf, 0, READ_SIZE, null)
        if (bytesRead === 0) break
        size += bytesRead
        stats.bytesRead += bytesRead
        for (const chunk of chunker.push(buf.subarray(0, bytesRead))) await store(chunk)
      }
      const last = chunker.end()
      if (last != null) await store(last)
    } finally {
      await handle.close()
    }
    entry.size = size
    stats.chunks += refs.length
    waits.push(...fileWaits)
    if (refs.length > MAX_INLINE_CHUNKS) {
      const pages = encodeChunkListPages(refs)
      entry.chunkList = pages[pages.length - 1].cid
      waits.push(writer.nodes(pages, fileWaits))
    } else {
      entry.chunks = refs
    }
    return size !== st.size ? `changed while being read (${st.size} bytes at the walk, ${size} read)` : undefined
  }

  /** takes the previous chunk list; false when it cannot be read (the file is then read instead) */
  const reuseFile = async (entry: FileEntry, prev: FileEntry): Promise<boolean> => {
    if (prev.chunks != null) {
      entry.chunks = prev.chunks
      stats.chunks += prev.chunks.length
      return true
    }
    let count = 0
    try {
      const it = readChunks(blocks, prev, options)
      while ((await it.next()).done !== true) count++
    } catch (err: any) {
      signal?.throwIfAborted()
      log.error('previous chunk list of %s cannot be read, reading the file afresh: %s', prev.name, err.message)
      return false
    }
    entry.chunkList = prev.chunkList
    stats.chunks += count
    return true
  }

  /**
   * Runs a command source's command and stores its standard output as the one file of the source
   * folder. Output is read as the pipe delivers it and chunked on the way; reading waits while
   * chunk writes are queued, so the pipe fills and the command blocks instead of memory growing.
   * A command that fails, times out or is aborted fails the capture.
   */
  const captureCommand = async (source: CommandSourceSpec): Promise<{ cid: CID, stored: Promise<void>, mtimeMs: number }> => {
    const output = source.output ?? DEFAULT_COMMAND_OUTPUT
    const ms = (source.timeoutSeconds ?? DEFAULT_COMMAND_TIMEOUT_SECONDS) * 1000
    const what = `source ${JSON.stringify(source.name)}: command`
    const running = startCommand({ command: source.command, cwd: source.cwd, env: { SNAPMESH_SOURCE: source.name }, timeoutMs: ms, stdout: true }, { signal })
    const commandError = (outcome: CommandOutcome): CommandFailedError | CommandTimeoutError => {
      const message = `${what} ${describeOutcome(outcome, ms)}: ${quoteStderr(outcome.stderr.text(MESSAGE_STDERR_BYTES))}`
      const details = { source: source.name, exitCode: outcome.exitCode, signal: outcome.signal, stderr: outcome.stderr.text() }
      return outcome.timedOut ? new CommandTimeoutError(message, details) : new CommandFailedError(message, details, { cause: outcome.spawnError })
    }
    const refs: ChunkRef[] = []
    const fileWaits: Array<Promise<void>> = []
    let size = 0
    const store = async (chunk: Uint8Array): Promise<void> => {
      const cid = cidForBytes(chunk, RAW)
      refs.push([cid, chunk.byteLength])
      fileWaits.push((await writer.chunk(cid, chunk)).stored)
    }
    try {
      const chunker = new Chunker(chunkerOptions)
      if (running.stdout != null) {
        for await (const buf of running.stdout as AsyncIterable<Buffer>) {
          writer.check()
          size += buf.byteLength
          stats.bytesRead += buf.byteLength
          for (const chunk of chunker.push(buf)) await store(chunk)
        }
      }
      const last = chunker.end()
      if (last != null) await store(last)
    } catch (err) {
      running.stdout?.destroy()
      running.kill()
      const outcome = await running.done
      if (outcome.aborted) signal?.throwIfAborted()
      // a command that could not start or was killed at its timeout explains a broken pipe best
      if (outcome.spawnError != null || outcome.timedOut) throw commandError(outcome)
      throw err
    }
    const outcome = await running.done
    if (outcome.aborted) signal?.throwIfAborted()
    writer.check()
    if (!succeeded(outcome)) throw commandError(outcome)
    const mtimeMs = clock()
    const entry: FileEntry = { name: output, kind: 'file', mode: COMMAND_FILE_MODE, mtimeMs, size }
    const waits = [...fileWaits]
    if (refs.length > MAX_INLINE_CHUNKS) {
      const pages = encodeChunkListPages(refs)
      entry.chunkList = pages[pages.length - 1].cid
      waits.push(writer.nodes(pages, fileWaits))
    } else {
      entry.chunks = refs
    }
    stats.files++
    stats.filesRead++
    stats.bytes += size
    stats.chunks += refs.length
    options.onProgress?.(new CustomProgressEvent('capture:file', { source: source.name, path: output, bytes: size }))
    log('source %s: command output of %d bytes in %d chunks', source.name, size, refs.length)
    const pages = encodeDirPages([entry])
    return { cid: pages[pages.length - 1].cid, stored: writer.nodes(pages, waits), mtimeMs }
  }

  /** captures a folder; resolves once its pages are encoded, with a promise for their storage */
  const captureDir = async (walk: Walk, abs: string, rel: string, prevDir: CID | undefined): Promise<{ cid: CID, stored: Promise<void> }> => {
    const names = await fs.readdir(abs)
    names.sort(compareNames)
    const previous = await previousEntries(prevDir, rel)
    const problem = (p: string, message: string): void => { problems.push({ source: walk.source.name, path: p, message }) }

    // look at every child before reading any file
    const children: Array<{ name: string, rel: string, abs: string, st: Stats }> = []
    for (const name of names) {
      writer.check()
      const childRel = rel === '' ? name : `${rel}/${name}`
      if (walk.excluded(childRel)) continue
      const childAbs = path.join(abs, name)
      try {
        children.push({ name, rel: childRel, abs: childAbs, st: await fs.lstat(childAbs) })
      } catch (err: any) {
        problem(childRel, `cannot be examined: ${errorText(err)}`)
      }
    }

    const entries: Entry[] = []
    const waits: Array<Promise<void>> = []
    for (const child of children) {
      writer.check()
      const { st, name } = child
      const base = { name, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, ...ownerOf(st, owners) }
      try {
        if (st.isDirectory()) {
          const prev = previous.get(name)
          const sub = await captureDir(walk, child.abs, child.rel, prev?.kind === 'dir' ? prev.dir : undefined)
          entries.push({ ...base, kind: 'dir', dir: sub.cid })
          waits.push(sub.stored)
          stats.dirs++
        } else if (st.isSymbolicLink()) {
          const target = await fs.readlink(child.abs)
          if (target === '') {
            problem(child.rel, 'skipped: symlink with an empty target')
            continue
          }
          entries.push({ ...base, kind: 'symlink', target })
          stats.symlinks++
        } else if (st.isFile()) {
          const entry: FileEntry = { ...base, kind: 'file', size: st.size, ino: st.ino, dev: st.dev }
          const prev = previous.get(name)
          const unchanged = prev?.kind === 'file' && prev.size === st.size && prev.mtimeMs === st.mtimeMs && prev.ino === st.ino && prev.dev === st.dev
          if (unchanged && await reuseFile(entry, prev)) {
            stats.filesReused++
          } else {
            const warning = await readFile(child.abs, st, entry, waits)
            if (entry.chunks == null && entry.chunkList == null) {
              problem(child.rel, `skipped: ${String(warning)}`)
              continue
            }
            if (warning != null) problem(child.rel, warning)
            stats.filesRead++
          }
          entries.push(entry)
          stats.files++
          stats.bytes += entry.size
          options.onProgress?.(new CustomProgressEvent('capture:file', { source: walk.source.name, path: child.rel, bytes: entry.size }))
        } else {
          problem(child.rel, `skipped: ${describeKind(st)} is not a file, folder or symlink`)
        }
      } catch (err: any) {
        writer.check()
        problem(child.rel, `${st.isDirectory() ? 'folder' : 'file'} left out: ${errorText(err)}`)
      }
    }

    const pages = encodeDirPages(entries)
    return { cid: pages[pages.length - 1].cid, stored: writer.nodes(pages, waits) }
  }

  try {
    const sources: SourceRecord[] = []
    const waits: Array<Promise<void>> = []
    for (const source of init.sources) {
      if (source.command != null) {
        const out = await captureCommand(source)
        sources.push({ name: source.name, path: '', kind: 'command', dir: out.cid, mode: COMMAND_DIR_MODE, mtimeMs: out.mtimeMs })
        waits.push(out.stored)
        stats.dirs++
        continue
      }
      const matchers = (source.exclude ?? []).map(glob => picomatch(glob, { dot: true }))
      const walk: Walk = { source, excluded: rel => matchers.some(m => m(rel)) }
      const record: SourceRecord = { name: source.name, path: source.path }
      try {
        const st = await fs.stat(source.path)
        if (!st.isDirectory()) throw Object.assign(new Error(`source path ${source.path} is not a folder`), { code: 'ENOTDIR' })
        const dir = await captureDir(walk, source.path, '', source.fresh === true ? undefined : previousDirs.get(source.name))
        record.dir = dir.cid
        record.mode = st.mode & 0o7777
        record.mtimeMs = st.mtimeMs
        Object.assign(record, ownerOf(st, owners))
        waits.push(dir.stored)
        stats.dirs++
      } catch (err: any) {
        writer.check()
        record.error = err.code === 'ENOENT' ? `source path ${source.path} does not exist` : `source path ${source.path} cannot be read: ${errorText(err)}`
        problems.push({ source: source.name, path: '', message: record.error })
      }
      sources.push(record)
    }
    const root: RootNode = { v: 1, type: ROOT_TYPE, peerId: init.peerId, name: init.name, time: clock(), sources }
    const block = encodeNode(root)
    await writer.nodes([block], waits)
    writer.check()
    stats.durationMs = clock() - started
    log('captured %d files, %d folders, %d symlinks (%d read, %d reused) into %s', stats.files, stats.dirs, stats.symlinks, stats.filesRead, stats.filesReused, block.cid)
    return { root: block.cid, stats, problems }
  } catch (err) {
    await writer.drain()
    throw err
  }
}
