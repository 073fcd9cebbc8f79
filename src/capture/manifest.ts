// The manifest format, described with its invariants in FORMAT.md beside this file.
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { DAG_CBOR, RAW, cidForBytes, verifyBlock } from '../store/index.js'
import { DEFAULT_MAX_SIZE } from './chunker.js'
import { InvalidManifestError } from './errors.js'
import { MAX_OWNER_NAME_BYTES } from './owners.js'
import type { BlockGetter } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'

export const MANIFEST_VERSION = 1
export const ROOT_TYPE = 'snapmesh/root'
export const DIR_TYPE = 'snapmesh/dir'
export const CHUNKS_TYPE = 'snapmesh/chunks'
/** entries in one directory page */
export const MAX_DIR_ENTRIES = 2000
/** chunks listed in a file entry itself; longer lists go to chunk-list pages */
export const MAX_INLINE_CHUNKS = 1000
/** chunks in one chunk-list page */
export const MAX_LIST_CHUNKS = 1000
/** the largest chunk a manifest may reference */
export const MAX_CHUNK_SIZE = DEFAULT_MAX_SIZE

/** [chunk CID (raw, sha2-256), chunk length in bytes] */
export type ChunkRef = [CID, number]

/** who owned an entry at capture; absent in manifests written before owners were recorded */
export interface OwnerFields {
  uid?: number
  gid?: number
  /** the user name of `uid` on the captured host, where it had one */
  user?: string
  /** the group name of `gid` on the captured host, where it had one */
  group?: string
}

interface EntryBase extends OwnerFields {
  /** one path component; see FORMAT.md */
  name: string
  /** permission bits, with setuid, setgid and sticky (mode & 0o7777) */
  mode: number
  mtimeMs: number
}

export interface FileEntry extends EntryBase {
  kind: 'file'
  size: number
  ino?: number
  dev?: number
  /** present unless `chunkList` is */
  chunks?: ChunkRef[]
  chunkList?: CID
}

export interface DirEntry extends EntryBase {
  kind: 'dir'
  dir: CID
}

export interface SymlinkEntry extends EntryBase {
  kind: 'symlink'
  target: string
}

export type Entry = FileEntry | DirEntry | SymlinkEntry

export interface SourceRecord extends OwnerFields {
  name: string
  /** the source's path on the captured host; '' for a command source */
  path: string
  /** 'command' for a command's output (its folder holds that one file); absent for a folder */
  kind?: 'command'
  /** first page of the source folder; absent when the source could not be read */
  dir?: CID
  /** mode and mtime of the source folder itself */
  mode?: number
  mtimeMs?: number
  /** why the source could not be read */
  error?: string
}

export interface RootNode {
  v: 1
  type: typeof ROOT_TYPE
  peerId: string
  name: string
  time: number
  sources: SourceRecord[]
}

export interface DirNode {
  v: 1
  type: typeof DIR_TYPE
  entries: Entry[]
  next?: CID
}

export interface ChunkListNode {
  v: 1
  type: typeof CHUNKS_TYPE
  chunks: ChunkRef[]
  next?: CID
}

export interface EncodedBlock { cid: CID, bytes: Uint8Array }

/** Orders names by their UTF-8 bytes, the order entries are stored in. */
export function compareNames (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** Encodes a manifest node as a dag-cbor block. */
export function encodeNode (node: RootNode | DirNode | ChunkListNode): EncodedBlock {
  const bytes = dagCbor.encode(node)
  return { cid: cidForBytes(bytes, DAG_CBOR), bytes }
}

/**
 * A directory's entries (sorted with compareNames) as linked pages, in write order: the last page
 * first, so each page is written after the page it links to. The last element is the first page,
 * whose CID names the directory. An empty directory is one page with no entries.
 */
export function encodeDirPages (entries: Entry[]): EncodedBlock[] {
  const out: EncodedBlock[] = []
  let next: CID | undefined
  const pages = Math.max(1, Math.ceil(entries.length / MAX_DIR_ENTRIES))
  for (let p = pages - 1; p >= 0; p--) {
    const node: DirNode = { v: 1, type: DIR_TYPE, entries: entries.slice(p * MAX_DIR_ENTRIES, (p + 1) * MAX_DIR_ENTRIES) }
    if (next != null) node.next = next
    const block = encodeNode(node)
    out.push(block)
    next = block.cid
  }
  return out
}

/** A chunk list as linked pages, in write order (see encodeDirPages). */
export function encodeChunkListPages (chunks: ChunkRef[]): EncodedBlock[] {
  const out: EncodedBlock[] = []
  let next: CID | undefined
  const pages = Math.max(1, Math.ceil(chunks.length / MAX_LIST_CHUNKS))
  for (let p = pages - 1; p >= 0; p--) {
    const node: ChunkListNode = { v: 1, type: CHUNKS_TYPE, chunks: chunks.slice(p * MAX_LIST_CHUNKS, (p + 1) * MAX_LIST_CHUNKS) }
    if (next != null) node.next = next
    const block = encodeNode(node)
    out.push(block)
    next = block.cid
  }
  return out
}

// --- decoding and validation -------------------------------------------------------------------

class Check {
  constructor (readonly cid: CID) {}

  fail (problem: string): never {
    throw new InvalidManifestError(`manifest node ${this.cid.toString()}: ${problem}`)
  }

  map (value: unknown, what: string): Record<string, unknown> {
    if (value == null || typeof value !== 'object' || Array.isArray(value) || CID.asCID(value) != null || value instanceof Uint8Array) this.fail(`${what} is not a map`)
    return value as Record<string, unknown>
  }

  string (value: unknown, what: string): string {
    if (typeof value !== 'string') this.fail(`${what} is not a string`)
    return value
  }

  uint (value: unknown, what: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) this.fail(`${what} is not a non-negative integer`)
    return value
  }

  number (value: unknown, what: string): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(`${what} is not a finite number`)
    return value
  }

  link (value: unknown, codec: number, what: string): CID {
    const cid = CID.asCID(value)
    if (cid == null) this.fail(`${what} is not a CID link`)
    if (cid.code !== codec) this.fail(`${what} ${cid.toString()} has codec 0x${cid.code.toString(16)}, expected 0x${codec.toString(16)}`)
    return cid
  }

  list (value: unknown, what: string, max: number): unknown[] {
    if (!Array.isArray(value)) this.fail(`${what} is not a list`)
    if (value.length > max) this.fail(`${what} has ${value.length} items, at most ${max} are allowed`)
    return value
  }

  header (node: Record<string, unknown>, type: string): void {
    if (node.v !== MANIFEST_VERSION) this.fail(`unsupported version ${JSON.stringify(node.v ?? null)}, expected ${MANIFEST_VERSION}`)
    if (node.type !== type) this.fail(`type is ${JSON.stringify(node.type ?? null)}, expected ${JSON.stringify(type)}`)
  }

  mode (value: unknown, what: string): number {
    const mode = this.uint(value, what)
    if (mode > 0o7777) this.fail(`${what} ${mode.toString(8)} has bits outside 0o7777`)
    return mode
  }

  /** the optional owner fields of an entry or a source, copied onto `to` */
  owner (from: Record<string, unknown>, what: string, to: OwnerFields): void {
    if (from.uid != null) to.uid = this.id(from.uid, `${what} uid`)
    if (from.gid != null) to.gid = this.id(from.gid, `${what} gid`)
    if (from.user != null) to.user = this.ownerName(from.user, `${what} user`)
    if (from.group != null) to.group = this.ownerName(from.group, `${what} group`)
  }

  private id (value: unknown, what: string): number {
    const id = this.uint(value, what)
    if (id > 0xfffffffe) this.fail(`${what} ${id} is not a user or group number`)
    return id
  }

  private ownerName (value: unknown, what: string): string {
    const name = this.string(value, what)
    if (name === '' || name.includes('\0') || name.includes(':') || name.includes('\n') || Buffer.byteLength(name) > MAX_OWNER_NAME_BYTES) this.fail(`${what} ${JSON.stringify(name.slice(0, 64))} is not a user or group name`)
    return name
  }

  chunks (value: unknown, what: string, max: number): ChunkRef[] {
    return this.list(value, what, max).map((item, i) => {
      if (!Array.isArray(item) || item.length !== 2) this.fail(`${what}[${i}] is not a [CID, size] pair`)
      const cid = this.link(item[0], RAW, `${what}[${i}]`)
      const size = this.uint(item[1], `${what}[${i}] size`)
      if (size === 0 || size > MAX_CHUNK_SIZE) this.fail(`${what}[${i}] size ${size} is not between 1 and ${MAX_CHUNK_SIZE}`)
      return [cid, size]
    })
  }
}

function decodeMap (cid: CID, bytes: Uint8Array): { check: Check, node: Record<string, unknown> } {
  const check = new Check(cid)
  if (cid.code !== DAG_CBOR) check.fail(`codec is 0x${cid.code.toString(16)}, manifest nodes are dag-cbor (0x71)`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err: any) {
    check.fail(`not valid dag-cbor: ${String(err.message)}`)
  }
  return { check, node: check.map(value, 'the node') }
}

function decodeEntry (check: Check, value: unknown, i: number): Entry {
  const e = check.map(value, `entries[${i}]`)
  const name = check.string(e.name, `entries[${i}].name`)
  const what = `entry ${JSON.stringify(name)}`
  const base: OwnerFields & { name: string, mode: number, mtimeMs: number } = { name, mode: check.mode(e.mode, `${what} mode`), mtimeMs: check.number(e.mtimeMs, `${what} mtimeMs`) }
  check.owner(e, what, base)
  switch (e.kind) {
    case 'file': {
      const size = check.uint(e.size, `${what} size`)
      const entry: FileEntry = { ...base, kind: 'file', size }
      if (e.ino != null) entry.ino = check.uint(e.ino, `${what} ino`)
      if (e.dev != null) entry.dev = check.uint(e.dev, `${what} dev`)
      if ((e.chunks == null) === (e.chunkList == null)) check.fail(`${what} must have exactly one of chunks and chunkList`)
      if (e.chunks != null) {
        entry.chunks = check.chunks(e.chunks, `${what} chunks`, MAX_INLINE_CHUNKS)
        const total = entry.chunks.reduce((n, c) => n + c[1], 0)
        if (total !== size) check.fail(`${what} has size ${size} but its chunks add up to ${total}`)
      } else {
        entry.chunkList = check.link(e.chunkList, DAG_CBOR, `${what} chunkList`)
      }
      return entry
    }
    case 'dir':
      return { ...base, kind: 'dir', dir: check.link(e.dir, DAG_CBOR, `${what} dir`) }
    case 'symlink': {
      const target = check.string(e.target, `${what} target`)
      if (target === '' || target.includes('\0')) check.fail(`${what} target is empty or contains NUL`)
      return { ...base, kind: 'symlink', target }
    }
    default:
      return check.fail(`${what} has unknown kind ${JSON.stringify(e.kind ?? null)}`)
  }
}

/** Decodes and checks a root node; throws InvalidManifestError naming the CID and the problem. */
export function decodeRoot (cid: CID, bytes: Uint8Array): RootNode {
  const { check, node } = decodeMap(cid, bytes)
  check.header(node, ROOT_TYPE)
  const names = new Set<string>()
  const sources = check.list(node.sources, 'sources', 1024).map((value, i): SourceRecord => {
    const s = check.map(value, `sources[${i}]`)
    const source: SourceRecord = { name: check.string(s.name, `sources[${i}].name`), path: check.string(s.path, `sources[${i}].path`) }
    if (names.has(source.name)) check.fail(`source name ${JSON.stringify(source.name)} appears twice`)
    names.add(source.name)
    if (s.kind != null) {
      if (s.kind !== 'command') check.fail(`source ${JSON.stringify(source.name)} has unknown kind ${JSON.stringify(s.kind)}`)
      source.kind = 'command'
    }
    if (s.dir != null) source.dir = check.link(s.dir, DAG_CBOR, `source ${JSON.stringify(source.name)} dir`)
    if (s.mode != null) source.mode = check.mode(s.mode, `source ${JSON.stringify(source.name)} mode`)
    if (s.mtimeMs != null) source.mtimeMs = check.number(s.mtimeMs, `source ${JSON.stringify(source.name)} mtimeMs`)
    if (s.error != null) source.error = check.string(s.error, `source ${JSON.stringify(source.name)} error`)
    check.owner(s, `source ${JSON.stringify(source.name)}`, source)
    if ((source.dir == null) === (source.error == null)) check.fail(`source ${JSON.stringify(source.name)} must have exactly one of dir and error`)
    return source
  })
  return {
    v: 1,
    type: ROOT_TYPE,
    peerId: check.string(node.peerId, 'peerId'),
    name: check.string(node.name, 'name'),
    time: check.number(node.time, 'time'),
    sources
  }
}

/** Decodes and checks one directory page: entries well formed and in strictly increasing name order. */
export function decodeDir (cid: CID, bytes: Uint8Array): DirNode {
  const { check, node } = decodeMap(cid, bytes)
  check.header(node, DIR_TYPE)
  const entries = check.list(node.entries, 'entries', MAX_DIR_ENTRIES).map((e, i) => decodeEntry(check, e, i))
  for (let i = 1; i < entries.length; i++) {
    if (compareNames(entries[i - 1].name, entries[i].name) >= 0) check.fail(`entries ${JSON.stringify(entries[i - 1].name)} and ${JSON.stringify(entries[i].name)} are out of order or repeated`)
  }
  const dir: DirNode = { v: 1, type: DIR_TYPE, entries }
  if (node.next != null) dir.next = check.link(node.next, DAG_CBOR, 'next')
  return dir
}

/** Decodes and checks one chunk-list page. */
export function decodeChunkList (cid: CID, bytes: Uint8Array): ChunkListNode {
  const { check, node } = decodeMap(cid, bytes)
  check.header(node, CHUNKS_TYPE)
  const list: ChunkListNode = { v: 1, type: CHUNKS_TYPE, chunks: check.chunks(node.chunks, 'chunks', MAX_LIST_CHUNKS) }
  if (node.next != null) list.next = check.link(node.next, DAG_CBOR, 'next')
  return list
}

async function fetch (blocks: BlockGetter, cid: CID, options?: AbortOptions): Promise<Uint8Array> {
  if (cid.code !== DAG_CBOR) throw new InvalidManifestError(`manifest node ${cid.toString()}: codec is 0x${cid.code.toString(16)}, manifest nodes are dag-cbor (0x71)`)
  const bytes = await blocks.get(cid, options)
  // the getter may be remote: check again whatever it promised
  verifyBlock(cid, bytes)
  return bytes
}

export async function readRoot (blocks: BlockGetter, cid: CID, options?: AbortOptions): Promise<RootNode> {
  return decodeRoot(cid, await fetch(blocks, cid, options))
}

/**
 * Every entry of a directory, across its pages, in order. Throws InvalidManifestError when a page
 * is malformed or the order breaks between pages.
 */
export async function * readDir (blocks: BlockGetter, cid: CID, options?: AbortOptions): AsyncGenerator<Entry> {
  let next: CID | undefined = cid
  let last: string | undefined
  let pages = 0
  while (next != null) {
    const at: CID = next
    const page = decodeDir(at, await fetch(blocks, at, options))
    if (pages++ > 0 && page.entries.length === 0) throw new InvalidManifestError(`manifest node ${at.toString()}: a continuation page of directory ${cid.toString()} is empty`)
    for (const entry of page.entries) {
      if (last != null && compareNames(last, entry.name) >= 0) {
        throw new InvalidManifestError(`manifest node ${at.toString()}: entry ${JSON.stringify(entry.name)} is out of order or repeated after ${JSON.stringify(last)} in directory ${cid.toString()}`)
      }
      last = entry.name
      yield entry
    }
    next = page.next
  }
}

/**
 * A file's chunks, inline or from its chunk-list pages. Throws InvalidManifestError when the
 * chunk sizes do not add up to the entry's size.
 */
export async function * readChunks (blocks: BlockGetter, entry: FileEntry, options?: AbortOptions): AsyncGenerator<ChunkRef> {
  if (entry.chunks != null) {
    yield * entry.chunks
    return
  }
  let next = entry.chunkList
  let total = 0
  while (next != null) {
    const at: CID = next
    const page = decodeChunkList(at, await fetch(blocks, at, options))
    if (page.chunks.length === 0) throw new InvalidManifestError(`manifest node ${at.toString()}: chunk list page of ${JSON.stringify(entry.name)} is empty`)
    for (const chunk of page.chunks) {
      total += chunk[1]
      if (total > entry.size) throw new InvalidManifestError(`manifest node ${at.toString()}: the chunks of ${JSON.stringify(entry.name)} add up to more than its size ${entry.size}`)
      yield chunk
    }
    next = page.next
  }
  if (total !== entry.size) throw new InvalidManifestError(`the chunks of ${JSON.stringify(entry.name)} add up to ${total} bytes, its size is ${entry.size}`)
}

export type ManifestBlockKind = 'root' | 'dir' | 'chunks' | 'chunk'

/**
 * Every block a root reaches, each CID once: manifest nodes are fetched (and checked) to find
 * their links, chunks are listed without being fetched. Useful to replicate or verify a snapshot.
 */
export async function * manifestBlocks (blocks: BlockGetter, root: CID, options?: AbortOptions): AsyncGenerator<{ cid: CID, kind: ManifestBlockKind }> {
  const seen = new Set<string>()
  const first = (cid: CID): boolean => {
    const key = cid.toString()
    if (seen.has(key)) return false
    seen.add(key)
    return true
  }
  first(root)
  const rootNode = await readRoot(blocks, root, options)
  yield { cid: root, kind: 'root' }
  const dirs: CID[] = rootNode.sources.flatMap(s => s.dir != null && first(s.dir) ? [s.dir] : [])
  while (dirs.length > 0) {
    let next: CID | undefined = dirs.pop()
    while (next != null) {
      options?.signal?.throwIfAborted()
      const at: CID = next
      const page = decodeDir(at, await fetch(blocks, at, options))
      yield { cid: at, kind: 'dir' }
      for (const entry of page.entries) {
        if (entry.kind === 'dir') {
          if (first(entry.dir)) dirs.push(entry.dir)
        } else if (entry.kind === 'file') {
          for (const [cid] of entry.chunks ?? []) if (first(cid)) yield { cid, kind: 'chunk' }
          let list = entry.chunkList != null && first(entry.chunkList) ? entry.chunkList : undefined
          while (list != null) {
            const listAt: CID = list
            const listPage = decodeChunkList(listAt, await fetch(blocks, listAt, options))
            yield { cid: listAt, kind: 'chunks' }
            for (const [cid] of listPage.chunks) if (first(cid)) yield { cid, kind: 'chunk' }
            list = listPage.next != null && first(listPage.next) ? listPage.next : undefined
          }
        }
      }
      next = page.next != null && first(page.next) ? page.next : undefined
    }
  }
}
