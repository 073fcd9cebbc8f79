import { randomBytes } from 'node:crypto'
import { manifestBlocks, readChunks, readDir, readRoot } from '../capture/index.js'
import { MAX_WANTS, newChallenge, proveHolding, type BlockExchange, type Challenge, type CopyState } from '../exchange/index.js'
import { appendTo } from './placement.js'
import type { BlockGetter, Blocks } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export interface VerifyProblem {
  /** the holder whose copy is bad */
  holder: string
  cid: string
  /** `<source>/<path>` of the file the block belongs to, or `(manifest)` for manifest nodes */
  path: string
  state: 'missing' | 'corrupt' | 'unproven' | 'unreachable'
  message?: string
}

export interface VerifyReport {
  blocks: number
  /** copies checked, over all holders */
  copies: number
  problems: VerifyProblem[]
}

export interface VerifyInit {
  root: CID
  /** this agent's peer ID: its own copies are checked in its store */
  self: string
  /** who should hold each block */
  holdersFor: (cid: CID) => string[]
  /** fetch every remote copy and re-hash it here, instead of asking holders to re-hash theirs */
  readData?: boolean
}

/** `cid -> first path` for every chunk of a manifest, and `(manifest)` for its nodes */
async function pathsOf (getter: BlockGetter, root: CID, options: AbortOptions): Promise<Map<string, string>> {
  const paths = new Map<string, string>()
  const node = await readRoot(getter, root, options)
  const walk = async (dir: CID, prefix: string): Promise<void> => {
    for await (const e of readDir(getter, dir, options)) {
      const p = `${prefix}/${e.name}`
      if (e.kind === 'dir') await walk(e.dir, p)
      else if (e.kind === 'file') {
        for await (const [cid] of readChunks(getter, e, options)) if (!paths.has(cid.toString())) paths.set(cid.toString(), p)
      }
    }
  }
  for (const s of node.sources) if (s.dir != null) await walk(s.dir, s.name)
  return paths
}

/**
 * A verified copy to check a holder's proof against, taken from this agent's store or from another
 * holder than the one challenged, else from anyone the getter knows. A copy found corrupt on the way
 * is reported through `corrupt`: the read quarantines it and the holder replaces it, so a later
 * challenge of that holder would no longer see the damage.
 */
async function referenceCopy (components: { blocks: Pick<Blocks, 'has' | 'get'>, exchange: Pick<BlockExchange, 'fetch'>, getter: BlockGetter }, cid: CID, self: string, others: string[], corrupt: (holder: string, message: string) => void, options: AbortOptions): Promise<Uint8Array | undefined> {
  try {
    if (await components.blocks.has(cid, options)) return await components.blocks.get(cid, options)
  } catch (err: any) {
    if (err.code === 'ERR_CORRUPT_BLOCK') corrupt(self, String(err.message))
  }
  for (const h of others) {
    try {
      const [bytes] = await components.exchange.fetch(h, [cid], options)
      if (bytes != null) return bytes
    } catch (err: any) {
      if (err.code === 'ERR_CORRUPT_BLOCK') corrupt(h, String(err.message))
    }
  }
  try {
    return await components.getter.get(cid, options)
  } catch {
    return undefined // no good copy to check against: the holder's own re-hash decides
  }
}

/** the longest range a challenge may name: a block up to this size is challenged over all of it */
const WHOLE_BLOCK_PROOF = 65536

/**
 * Checks every copy of every block of one participant's snapshot at the holders placement names:
 * missing and corrupt copies are reported with the holder, the CID and the file they belong to.
 *
 * A holder is asked about MAX_WANTS blocks per request. With proof of holding, the blocks of a
 * request that are at most WHOLE_BLOCK_PROOF bytes share one fresh nonce and are each proven over
 * all their bytes; a larger block gets a challenge of its own over random ranges, and a block with
 * no verified copy here is only re-hashed by the holder. With `readData`, the blocks of a request
 * come back in one stream, and from the first corrupt one on, one by one.
 */
export async function verifyCopies (components: { blocks: Pick<Blocks, 'has' | 'get'>, exchange: Pick<BlockExchange, 'check' | 'fetch' | 'fetchEach'>, getter: BlockGetter }, init: VerifyInit, options: AbortOptions = {}): Promise<VerifyReport> {
  const paths = await pathsOf(components.getter, init.root, options)
  const perHolder = new Map<string, CID[]>()
  let blocks = 0
  let copies = 0
  for await (const { cid } of manifestBlocks(components.getter, init.root, options)) {
    blocks++
    for (const h of init.holdersFor(cid)) {
      appendTo(perHolder, h, cid)
      copies++
    }
  }
  const problems: VerifyProblem[] = []
  /** `holder cid` of every copy already found bad: each is reported once */
  const found = new Set<string>()
  const isHolder = (holder: string, cid: CID): boolean => init.holdersFor(cid).includes(holder)
  const report = (holder: string, cid: CID, state: CopyState | 'unproven' | 'unreachable', message?: string): void => {
    if (state === 'ok' || found.has(`${holder} ${cid.toString()}`)) return
    found.add(`${holder} ${cid.toString()}`)
    const p: VerifyProblem = { holder, cid: cid.toString(), path: paths.get(cid.toString()) ?? '(manifest)', state }
    if (message != null) p.message = message
    problems.push(p)
  }

  /** fetches the copies and re-hashes them here */
  const readCopies = async (holder: string, batch: CID[]): Promise<void> => {
    let next = 0
    try {
      await components.exchange.fetchEach(holder, batch, (j, block) => {
        report(holder, batch[j], block == null ? 'missing' : 'ok')
        next = j + 1
      }, options)
      return
    } catch (err: any) {
      if (err.code !== 'ERR_CORRUPT_BLOCK') throw err
    }
    // a copy was corrupt, which ends the request: the rest one at a time, to tell which
    for (const cid of batch.slice(next)) {
      try {
        const [bytes] = await components.exchange.fetch(holder, [cid], options)
        report(holder, cid, bytes == null ? 'missing' : 'ok')
      } catch (err: any) {
        if (err.code === 'ERR_CORRUPT_BLOCK') report(holder, cid, 'corrupt', err.message)
        else throw err
      }
    }
  }

  /** asks the holder to prove it holds each copy, against a verified copy here */
  const proveCopies = async (holder: string, batch: CID[]): Promise<void> => {
    const judge = (cid: CID, answer: { state: CopyState, proof?: Uint8Array }, expected: Uint8Array | undefined): void => {
      if (answer.state === 'ok' && expected != null && (answer.proof == null || !Buffer.from(answer.proof).equals(Buffer.from(expected)))) {
        report(holder, cid, 'unproven', 'the holder could not prove it holds the block')
      } else {
        report(holder, cid, answer.state)
      }
    }
    const shared: Challenge = { nonce: randomBytes(32), ranges: [[0, WHOLE_BLOCK_PROOF]] }
    const small: Array<{ cid: CID, expected: Uint8Array }> = []
    const unchecked: CID[] = []
    for (const cid of batch) {
      if (found.has(`${holder} ${cid.toString()}`)) continue
      const copy = await referenceCopy(components, cid, init.self, init.holdersFor(cid).filter(h => h !== holder && h !== init.self), (h, message) => {
        if (isHolder(h, cid)) report(h, cid, 'corrupt', message)
      }, options)
      if (copy == null) {
        unchecked.push(cid)
      } else if (copy.byteLength <= WHOLE_BLOCK_PROOF) {
        small.push({ cid, expected: proveHolding(copy, shared) })
      } else {
        const challenge = newChallenge(copy.byteLength)
        const [answer] = await components.exchange.check(holder, [cid], { ...options, challenge })
        judge(cid, answer, proveHolding(copy, challenge))
      }
    }
    if (small.length > 0) {
      const answers = await components.exchange.check(holder, small.map(s => s.cid), { ...options, challenge: shared })
      small.forEach(({ cid, expected }, k) => { judge(cid, answers[k], expected) })
    }
    if (unchecked.length > 0) {
      // no good copy to check against: the holder's own re-hash decides
      const answers = await components.exchange.check(holder, unchecked, options)
      unchecked.forEach((cid, k) => { judge(cid, answers[k], undefined) })
    }
  }

  for (const [holder, cids] of perHolder) {
    if (holder === init.self) {
      for (const cid of cids) {
        if (found.has(`${holder} ${cid.toString()}`)) continue
        try {
          if (!await components.blocks.has(cid, options)) { report(holder, cid, 'missing'); continue }
          await components.blocks.get(cid, options)
        } catch (err: any) {
          report(holder, cid, err.code === 'ERR_CORRUPT_BLOCK' ? 'corrupt' : 'missing', err.message)
        }
      }
      continue
    }
    for (let i = 0; i < cids.length; i += MAX_WANTS) {
      const batch = cids.slice(i, i + MAX_WANTS)
      try {
        if (init.readData === true) await readCopies(holder, batch)
        else await proveCopies(holder, batch)
      } catch (err: any) {
        if (options.signal?.aborted === true) throw err
        for (const cid of batch) report(holder, cid, 'unreachable', String(err.message))
      }
    }
  }
  return { blocks, copies, problems }
}
