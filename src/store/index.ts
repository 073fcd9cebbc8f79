import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { BlockNotFoundError, CorruptBlockError, UnsupportedHashError } from './errors.js'
import type { AbortOptions, Startable } from '@libp2p/interface'

export { BlockNotFoundError, CorruptBlockError, UnsupportedHashError } from './errors.js'

export const RAW = 0x55
export const DAG_CBOR = 0x71

export interface BlockGetter {
  /** the block's bytes, checked against the CID */
  get(cid: CID, options?: AbortOptions): Promise<Uint8Array>
}

export interface Blocks extends BlockGetter {
  /** stores a block durably; false when it was already present */
  put(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<boolean>
  has(cid: CID, options?: AbortOptions): Promise<boolean>
  delete(cid: CID, options?: AbortOptions): Promise<void>
}

export function sha256Digest (bytes: Uint8Array): Uint8Array {
  return crypto.createHash('sha256').update(bytes).digest()
}

/** CIDv1 with a sha2-256 multihash of the bytes. */
export function cidForBytes (bytes: Uint8Array, codec: number): CID {
  return CID.createV1(codec, Digest.create(sha256.code, sha256Digest(bytes)))
}

/** Throws CorruptBlockError unless `bytes` hash to `cid`. */
export function verifyBlock (cid: CID, bytes: Uint8Array, where?: string): void {
  if (cid.multihash.code !== sha256.code) {
    throw new UnsupportedHashError(`block ${cid.toString()} uses multihash 0x${cid.multihash.code.toString(16)}; only sha2-256 is supported`)
  }
  const digest = sha256Digest(bytes)
  if (Buffer.compare(Buffer.from(digest), Buffer.from(cid.multihash.digest)) !== 0) {
    throw new CorruptBlockError(`block ${cid.toString()}${where != null ? ` (${where})` : ''} is corrupt: its bytes hash to ${Buffer.from(digest).toString('hex')}`)
  }
}

/**
 * A content-addressed block store on disk: `<path>/blocks/<shard>/<cid>`. A block is written to a
 * temporary file in its shard folder, fsynced and renamed into place, so a crash leaves either the
 * whole block or nothing under its name. Every read re-hashes the block.
 */
export class FsBlockStore implements Blocks, Startable {
  readonly path: string
  private readonly dir: string
  private readonly shards = new Set<string>()
  private tmpCounter = 0

  constructor (init: { path: string }) {
    this.path = init.path
    this.dir = path.join(init.path, 'blocks')
  }

  async start (): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 })
  }

  async stop (): Promise<void> {}

  /** the file that holds a block */
  file (cid: CID): string {
    const name = cid.toV1().toString()
    return path.join(this.dir, name.slice(-2), name)
  }

  async has (cid: CID): Promise<boolean> {
    try {
      await fs.access(this.file(cid))
      return true
    } catch {
      return false
    }
  }

  async get (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    const file = this.file(cid)
    let bytes: Uint8Array
    try {
      bytes = await fs.readFile(file, { signal: options.signal })
    } catch (err: any) {
      if (err.code === 'ENOENT') throw new BlockNotFoundError(`block ${cid.toString()} is not in the store`)
      throw err
    }
    verifyBlock(cid, bytes, file)
    return bytes
  }

  async put (cid: CID, bytes: Uint8Array, options: AbortOptions = {}): Promise<boolean> {
    options.signal?.throwIfAborted()
    verifyBlock(cid, bytes)
    if (await this.has(cid)) return false
    const file = this.file(cid)
    const shard = path.dirname(file)
    if (!this.shards.has(shard)) {
      await fs.mkdir(shard, { recursive: true, mode: 0o700 })
      await fsyncDir(this.dir)
      this.shards.add(shard)
    }
    const tmp = `${file}.tmp-${process.pid}-${this.tmpCounter++}`
    const fh = await fs.open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(bytes)
      await fh.sync()
    } catch (err) {
      await fh.close()
      await fs.rm(tmp, { force: true })
      throw err
    }
    await fh.close()
    await fs.rename(tmp, file)
    return true
  }

  async delete (cid: CID): Promise<void> {
    await fs.rm(this.file(cid), { force: true })
  }
}

async function fsyncDir (dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
