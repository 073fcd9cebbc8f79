// The manifest format: see FORMAT.md beside this file.
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { DAG_CBOR, cidForBytes, verifyBlock } from '../store/index.js'
import { InvalidManifestError } from './errors.js'
import type { BlockGetter, Blocks } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'

export const ENTRIES_PER_NODE = 2000
export const CHUNKS_INLINE = 1000

export type Chunk = [CID, number]

export interface Entry {
  name: string
  kind: 'file' | 'dir' | 'symlink'
  mode: number
  mtimeMs: number
  size?: number
  ino?: number
  dev?: number
  chunks?: Chunk[]
  chunkList?: CID
  dir?: CID
  target?: string
}

export interface RootNode {
  v: 1
  type: 'snapmesh/root'
  peerId: string
  name: string
  time: number
  sources: Array<{ name: string, path: string, dir?: CID, mode?: number, mtimeMs?: number, error?: string }>
}

export interface DirNode { v: 1, type: 'snapmesh/dir', entries: Entry[], next?: CID }
export interface ChunksNode { v: 1, type: 'snapmesh/chunks', chunks: Chunk[], next?: CID }

/** A name that is one path component: no separator, not `.`/`..`, not empty, no NUL. */
export function isSafeName (name: unknown): name is string {
  return typeof name === 'string' && name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0') && Buffer.byteLength(name) <= 255
}

export async function putNode (blocks: Blocks, node: object, options?: AbortOptions): Promise<CID> {
  const bytes = dagCbor.encode(node)
  const cid = cidForBytes(bytes, DAG_CBOR)
  await blocks.put(cid, bytes, options)
  return cid
}

async function getNode (blocks: BlockGetter, cid: CID, options?: AbortOptions): Promise<Record<string, unknown>> {
  if (cid.code !== DAG_CBOR) throw new InvalidManifestError(`manifest node ${cid.toString()} is not dag-cbor`)
  const bytes = await blocks.get(cid, options)
  verifyBlock(cid, bytes)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err: any) {
    throw new InvalidManifestError(`manifest node ${cid.toString()} does not decode: ${String(err.message)}`)
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidManifestError(`manifest node ${cid.toString()} is not a map`)
  return value as Record<string, unknown>
}

function bad (cid: CID, what: string): never {
  throw new InvalidManifestError(`manifest node ${cid.toString()}: ${what}`)
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0
const isCid = (v: unknown): v is CID => CID.asCID(v) != null

function checkChunks (cid: CID, chunks: unknown): Chunk[] {
  if (!Array.isArray(chunks)) bad(cid, 'chunks is not a list')
  for (const c of chunks) {
    if (!Array.isArray(c) || c.length !== 2 || !isCid(c[0]) || !isUint(c[1])) bad(cid, 'a chunk is not [CID, size]')
  }
  return chunks as Chunk[]
}

export async function readRoot (blocks: BlockGetter, cid: CID, options?: AbortOptions): Promise<RootNode> {
  const n = await getNode(blocks, cid, options)
  if (n.v !== 1 || n.type !== 'snapmesh/root') bad(cid, 'not a snapmesh root')
  if (!Array.isArray(n.sources)) bad(cid, 'sources is not a list')
  for (const s of n.sources as any[]) {
    if (!isSafeName(s?.name)) bad(cid, `unsafe source name ${JSON.stringify(s?.name)}`)
    if (s.dir != null && !isCid(s.dir)) bad(cid, `source ${String(s.name)}: dir is not a CID`)
  }
  return n as unknown as RootNode
}

/** every entry of a directory, following its pages, each entry checked */
export async function * readDir (blocks: BlockGetter, cid: CID, options?: AbortOptions): AsyncGenerator<Entry> {
  let next: CID | undefined = cid
  const seen = new Set<string>()
  while (next != null) {
    const at: CID = next
    const n = await getNode(blocks, at, options)
    if (n.v !== 1 || n.type !== 'snapmesh/dir' || !Array.isArray(n.entries)) bad(at, 'not a directory node')
    for (const e of n.entries as any[]) {
      if (e == null || typeof e !== 'object') bad(at, 'an entry is not a map')
      if (!isSafeName(e.name)) bad(at, `unsafe entry name ${JSON.stringify(e.name)}`)
      if (seen.has(e.name)) bad(at, `entry ${JSON.stringify(e.name)} appears twice`)
      seen.add(e.name)
      if (!['file', 'dir', 'symlink'].includes(e.kind)) bad(at, `entry ${JSON.stringify(e.name)} has unknown kind ${JSON.stringify(e.kind)}`)
      if (!isUint(e.mode) || e.mode > 0o7777) bad(at, `entry ${JSON.stringify(e.name)} has a bad mode`)
      if (typeof e.mtimeMs !== 'number' || !Number.isFinite(e.mtimeMs)) bad(at, `entry ${JSON.stringify(e.name)} has a bad mtime`)
      if (e.kind === 'file') {
        if (!isUint(e.size)) bad(at, `file ${JSON.stringify(e.name)} has a bad size`)
        if (e.chunks != null) checkChunks(at, e.chunks)
        if (e.chunkList != null && !isCid(e.chunkList)) bad(at, `file ${JSON.stringify(e.name)}: chunkList is not a CID`)
      } else if (e.kind === 'dir') {
        if (!isCid(e.dir)) bad(at, `directory ${JSON.stringify(e.name)} has no node`)
      } else if (typeof e.target !== 'string' || e.target.includes('\0')) {
        bad(at, `symlink ${JSON.stringify(e.name)} has a bad target`)
      }
      yield e as Entry
    }
    if (n.next != null && !isCid(n.next)) bad(at, 'next is not a CID')
    next = n.next as CID | undefined
  }
}

/** a file's chunks, inline or from its chunk-list pages */
export async function * readChunks (blocks: BlockGetter, entry: Entry, options?: AbortOptions): AsyncGenerator<Chunk> {
  if (entry.chunks != null) yield * entry.chunks
  let next = entry.chunkList
  while (next != null) {
    const at: CID = next
    const n = await getNode(blocks, at, options)
    if (n.v !== 1 || n.type !== 'snapmesh/chunks') bad(at, 'not a chunk list')
    yield * checkChunks(at, n.chunks)
    if (n.next != null && !isCid(n.next)) bad(at, 'next is not a CID')
    next = n.next as CID | undefined
  }
}

/** stores a long chunk list as linked pages; returns the first page's CID */
export async function putChunkList (blocks: Blocks, chunks: Chunk[], options?: AbortOptions): Promise<CID> {
  let next: CID | undefined
  for (let end = chunks.length; end > 0; end -= CHUNKS_INLINE) {
    const page: ChunksNode = { v: 1, type: 'snapmesh/chunks', chunks: chunks.slice(Math.max(0, end - CHUNKS_INLINE), end) }
    if (next != null) page.next = next
    next = await putNode(blocks, page, options)
  }
  return next as CID
}

/** stores a directory's entries (sorted by the caller) as linked pages; returns the first page's CID */
export async function putDir (blocks: Blocks, entries: Entry[], options?: AbortOptions): Promise<CID> {
  let next: CID | undefined
  const last = Math.max(entries.length, 1)
  for (let end = last; end > 0; end -= ENTRIES_PER_NODE) {
    const page: DirNode = { v: 1, type: 'snapmesh/dir', entries: entries.slice(Math.max(0, end - ENTRIES_PER_NODE), end) }
    if (next != null) page.next = next
    next = await putNode(blocks, page, options)
  }
  return next as CID
}
