import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import PQueue from 'p-queue'
import { Uint8ArrayList } from 'uint8arraylist'
import { BlockNotFoundError, CorruptBlockError, UnsupportedHashError } from './errors.js'
import type { AbortOptions, Startable } from '@libp2p/interface'

export { BlockNotFoundError, CorruptBlockError, UnsupportedHashError } from './errors.js'

const log = logger('snapmesh:store')

/** multicodec of sha2-256, the only hash the store accepts */
export const SHA2_256 = 0x12
/** codec of file content chunks */
export const RAW = 0x55
/** codec of manifest nodes */
export const DAG_CBOR = 0x71

export interface BlockGetter {
  /** the block's bytes, verified against the CID */
  get(cid: CID, options?: AbortOptions): Promise<Uint8Array>
}

/** a block's bytes, in one piece or as the pieces they arrived in */
export type BlockBytes = Uint8Array | Uint8ArrayList

export interface Blocks extends BlockGetter {
  /** stores a block; resolves false when it was already present */
  put(cid: CID, bytes: BlockBytes, options?: AbortOptions): Promise<boolean>
  has(cid: CID, options?: AbortOptions): Promise<boolean>
  /** removes a block; removing an absent block is not an error */
  delete(cid: CID, options?: AbortOptions): Promise<void>
}

export interface FsBlockStoreInit {
  /** folder that holds the store; blocks live in `<path>/blocks` */
  path: string
  /** called after a read found a block corrupt and moved it to quarantine/, so a good copy can be fetched */
  onCorrupt?: (cid: CID) => void
}

function sha256 (bytes: BlockBytes): Uint8Array {
  const hash = createHash('sha256')
  if (bytes instanceof Uint8Array) return hash.update(bytes).digest()
  // a block received in pieces is hashed piece by piece, never joined
  for (const piece of bytes) hash.update(piece)
  return hash.digest()
}

/** The CIDv1 of `bytes` under `codec`, hashed with sha2-256. */
export function cidForBytes (bytes: Uint8Array, codec: number): CID {
  return CID.createV1(codec, Digest.create(SHA2_256, sha256(bytes)))
}

function checkHash (cid: CID): void {
  if (cid.multihash.code !== SHA2_256) {
    throw new UnsupportedHashError(`block ${cid.toString()} uses multihash 0x${cid.multihash.code.toString(16)}; only sha2-256 (0x12) is supported`)
  }
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) return false
  }
  return true
}

/**
 * Throws CorruptBlockError naming the CID when `bytes` do not hash to `cid`, and
 * UnsupportedHashError when the CID does not use sha2-256.
 */
export function verifyBlock (cid: CID, bytes: BlockBytes): void {
  checkHash(cid)
  if (!sameBytes(sha256(bytes), cid.multihash.digest)) {
    throw new CorruptBlockError(`block ${cid.toString()} is corrupt: its ${bytes.byteLength} bytes do not hash to its CID`)
  }
}

function isNotFound (err: any): boolean {
  return err?.code === 'ENOENT'
}

/** fsyncs a folder, so that renames and new names in it are durable */
export async function syncDir (dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** writes every byte of `bytes` at the file's current position, with as few system calls as it can */
async function writeAll (handle: fs.FileHandle, bytes: BlockBytes): Promise<void> {
  if (bytes instanceof Uint8Array) {
    await handle.writeFile(bytes)
    return
  }
  const pieces = [...bytes]
  let next = 0
  while (next < pieces.length) {
    // writev takes at most IOV_MAX (1024) pieces and may write fewer bytes than asked
    const batch = pieces.slice(next, next + 1024)
    let { bytesWritten } = await handle.writev(batch)
    let used = 0
    while (used < batch.length && bytesWritten >= batch[used].byteLength) bytesWritten -= batch[used++].byteLength
    next += used
    if (bytesWritten > 0) pieces[next] = pieces[next].subarray(bytesWritten)
  }
}

/** how many block writes putMany keeps going at once: their fsyncs overlap */
const PUT_CONCURRENCY = 8

/**
 * A content-addressed block store on the local file system. Each block is one file,
 * `<path>/blocks/<shard>/<cid>`, where `<cid>` is the CIDv1 in base32 and `<shard>` is the two
 * characters before its last one. Writes go to a temporary file in the shard folder that is
 * fsynced and then renamed into place, and the shard folder is fsynced after the rename, so a
 * block that `put` reported is complete and durable (puts that land in one folder at once share
 * its fsync). Reads re-hash every block.
 */
export class FsBlockStore implements Blocks, Startable {
  private readonly root: string
  private readonly pending = new Map<string, Promise<boolean>>()
  private readonly knownShards = new Set<string>()
  /** per folder: the fsync running now, and the one queued to run after it */
  private readonly dirSyncs = new Map<string, { running: Promise<void>, queued?: Promise<void> }>()
  private started = false

  private readonly quarantine: string
  private readonly onCorrupt?: (cid: CID) => void

  constructor (init: FsBlockStoreInit) {
    this.root = path.join(init.path, 'blocks')
    this.quarantine = path.join(init.path, 'quarantine')
    this.onCorrupt = init.onCorrupt
  }

  isStarted (): boolean {
    return this.started
  }

  /** creates the folders and removes temporary files left behind by an interrupted put */
  async start (): Promise<void> {
    if (this.started) return
    await fs.mkdir(this.root, { recursive: true })
    for (const shard of await fs.readdir(this.root)) {
      const dir = path.join(this.root, shard)
      let names: string[]
      try {
        names = await fs.readdir(dir)
      } catch (err: any) {
        if (err.code === 'ENOTDIR') continue
        throw err
      }
      for (const name of names) {
        if (name.endsWith('.tmp')) {
          log('removing leftover temporary file %s', path.join(dir, name))
          await fs.rm(path.join(dir, name), { force: true })
        }
      }
    }
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
  }

  /** where the block with this CID is (or would be) stored */
  pathFor (cid: CID): string {
    const key = cid.toV1().toString()
    return path.join(this.root, key.slice(-3, -1), key)
  }

  async has (cid: CID, options: AbortOptions = {}): Promise<boolean> {
    options.signal?.throwIfAborted()
    checkHash(cid)
    try {
      await fs.access(this.pathFor(cid))
      return true
    } catch (err: any) {
      if (isNotFound(err)) return false
      throw err
    }
  }

  async get (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    checkHash(cid)
    const file = this.pathFor(cid)
    let bytes: Uint8Array
    try {
      bytes = await fs.readFile(file, { signal: options.signal })
    } catch (err: any) {
      if (isNotFound(err)) throw new BlockNotFoundError(`block ${cid.toString()} is not in the store (${file})`)
      throw err
    }
    if (!sameBytes(sha256(bytes), cid.multihash.digest)) {
      // a corrupt copy is moved aside, so that the block counts as absent and a good copy can
      // take its place; the bad bytes stay in quarantine/ for inspection
      const kept = await this.quarantineFile(cid, file)
      if (kept != null) {
        try {
          this.onCorrupt?.(cid)
        } catch (err: any) {
          log.error('corrupt block listener failed for %s: %s', cid, err.message)
        }
      }
      throw new CorruptBlockError(`block ${cid.toString()} is corrupt: the ${bytes.byteLength} bytes in ${file} do not hash to its CID${kept != null ? ` (moved to ${kept})` : ''}`)
    }
    return bytes
  }

  private async quarantineFile (cid: CID, file: string): Promise<string | undefined> {
    try {
      await fs.mkdir(this.quarantine, { recursive: true })
      const dest = path.join(this.quarantine, `${cid.toString()}.${Date.now()}`)
      await fs.rename(file, dest)
      log.error('quarantined corrupt block %s to %s', cid, dest)
      return dest
    } catch (err: any) {
      log.error('could not quarantine corrupt block %s: %s', cid, err.message)
      return undefined
    }
  }

  /**
   * Stores a block: temporary file, fsync, rename, fsync of the shard folder. Resolves once the
   * block is durable; false when it was already present. Concurrent puts share folder fsyncs.
   */
  async put (cid: CID, bytes: BlockBytes, options: AbortOptions = {}): Promise<boolean> {
    options.signal?.throwIfAborted()
    checkHash(cid)
    const file = this.pathFor(cid)
    const inFlight = this.pending.get(file)
    if (inFlight != null) {
      await inFlight
      return false
    }
    const p = this.write(file, bytes)
    this.pending.set(file, p)
    try {
      return await p
    } finally {
      this.pending.delete(file)
    }
  }

  /**
   * Stores several blocks, a few at a time so that their fsyncs overlap and blocks in the same
   * folder share its fsync. Resolves, in order, to whether each block was new, once all are
   * durable; rejects with the first error, after every write has finished or failed.
   */
  async putMany (blocks: Iterable<{ cid: CID, bytes: BlockBytes }>, options: AbortOptions = {}): Promise<boolean[]> {
    const queue = new PQueue({ concurrency: PUT_CONCURRENCY })
    const results = await Promise.allSettled([...blocks].map(async ({ cid, bytes }) => queue.add(async () => this.put(cid, bytes, options), { throwOnTimeout: true })))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed != null) throw failed.reason
    return results.map(r => (r as PromiseFulfilledResult<boolean>).value)
  }

  /**
   * fsyncs a folder after a rename into it. A caller waits for an fsync that started after its
   * rename: it joins the one queued behind a running fsync, or starts one. So puts that land in
   * the same folder while an fsync runs share the next one.
   */
  private async syncShard (dir: string): Promise<void> {
    const current = this.dirSyncs.get(dir)
    if (current == null) return this.startShardSync(dir)
    current.queued ??= current.running.then(() => {}, () => {}).then(async () => this.startShardSync(dir))
    return current.queued
  }

  private async startShardSync (dir: string): Promise<void> {
    const running: Promise<void> = syncDir(dir).finally(() => {
      if (this.dirSyncs.get(dir)?.running === running) this.dirSyncs.delete(dir)
    })
    this.dirSyncs.set(dir, { running })
    return running
  }

  private async write (file: string, bytes: BlockBytes): Promise<boolean> {
    try {
      await fs.access(file)
      return false
    } catch (err: any) {
      if (!isNotFound(err)) throw err
    }
    const dir = path.dirname(file)
    if (!this.knownShards.has(dir)) {
      const created = await fs.mkdir(dir, { recursive: true })
      if (created != null) await syncDir(this.root)
      this.knownShards.add(dir)
    }
    const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
    try {
      const handle = await fs.open(tmp, 'wx', 0o444)
      try {
        await writeAll(handle, bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
      await fs.rename(tmp, file)
    } catch (err) {
      await fs.rm(tmp, { force: true })
      throw err
    }
    await this.syncShard(dir)
    return true
  }

  async delete (cid: CID, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    checkHash(cid)
    await fs.rm(this.pathFor(cid), { force: true })
  }

  /** the size and modification time of a stored block's file; undefined when it is not stored */
  async info (cid: CID, options: AbortOptions = {}): Promise<{ size: number, mtimeMs: number } | undefined> {
    options.signal?.throwIfAborted()
    checkHash(cid)
    try {
      const st = await fs.stat(this.pathFor(cid))
      return { size: st.size, mtimeMs: st.mtimeMs }
    } catch (err: any) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  /** every CID in the store, in no particular order */
  async * cids (options: AbortOptions = {}): AsyncGenerator<CID> {
    let shards: string[]
    try {
      shards = await fs.readdir(this.root)
    } catch (err: any) {
      if (isNotFound(err)) return
      throw err
    }
    for (const shard of shards) {
      options.signal?.throwIfAborted()
      let names: string[]
      try {
        names = await fs.readdir(path.join(this.root, shard))
      } catch (err: any) {
        if (isNotFound(err) || err.code === 'ENOTDIR') continue
        throw err
      }
      for (const name of names) {
        if (name.startsWith('.')) continue
        try {
          yield CID.parse(name)
        } catch {
          log('ignoring %s in the store: not a CID', path.join(this.root, shard, name))
        }
      }
    }
  }
}
