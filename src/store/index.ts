import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
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

export interface Blocks extends BlockGetter {
  /** stores a block; resolves false when it was already present */
  put(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<boolean>
  has(cid: CID, options?: AbortOptions): Promise<boolean>
  /** removes a block; removing an absent block is not an error */
  delete(cid: CID, options?: AbortOptions): Promise<void>
}

export interface FsBlockStoreInit {
  /** folder that holds the store; blocks live in `<path>/blocks` */
  path: string
}

function sha256 (bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
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
export function verifyBlock (cid: CID, bytes: Uint8Array): void {
  checkHash(cid)
  if (!sameBytes(sha256(bytes), cid.multihash.digest)) {
    throw new CorruptBlockError(`block ${cid.toString()} is corrupt: its ${bytes.byteLength} bytes do not hash to its CID`)
  }
}

function isNotFound (err: any): boolean {
  return err?.code === 'ENOENT'
}

async function syncDir (dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * A content-addressed block store on the local file system. Each block is one file,
 * `<path>/blocks/<shard>/<cid>`, where `<cid>` is the CIDv1 in base32 and `<shard>` is the two
 * characters before its last one. Writes go to a temporary file in the shard folder that is
 * fsynced and then renamed into place, and the shard folder is fsynced after the rename, so a
 * block that `put` reported is complete and durable. Reads re-hash every block.
 */
export class FsBlockStore implements Blocks, Startable {
  private readonly root: string
  private readonly pending = new Map<string, Promise<boolean>>()
  private readonly knownShards = new Set<string>()
  private started = false

  private readonly quarantine: string

  constructor (init: FsBlockStoreInit) {
    this.root = path.join(init.path, 'blocks')
    this.quarantine = path.join(init.path, 'quarantine')
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

  async put (cid: CID, bytes: Uint8Array, options: AbortOptions = {}): Promise<boolean> {
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

  private async write (file: string, bytes: Uint8Array): Promise<boolean> {
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
        await handle.writeFile(bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
      await fs.rename(tmp, file)
    } catch (err) {
      await fs.rm(tmp, { force: true })
      throw err
    }
    await syncDir(dir)
    return true
  }

  async delete (cid: CID, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    checkHash(cid)
    await fs.rm(this.pathFor(cid), { force: true })
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
