// Checking one participant's part of a snapshot across its holders (verifyCopies) and, when asked,
// re-making each bad copy from a good one.
import { logger } from '@libp2p/logger'
import { CID } from 'multiformats/cid'
import { verifyCopies, type VerifyProblem } from './verify.js'
import type { HolderFinder } from './holders.js'
import type { Replicator } from './index.js'
import type { BlockExchange, RemoteBlockGetter } from '../exchange/index.js'
import type { Blocks } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('snapmesh:replication:check')

export interface PartCheck {
  blocks: number
  copies: number
  problems: Array<VerifyProblem & { repaired?: boolean }>
}

export interface CopyCheckerComponents {
  blocks: Blocks
  exchange: BlockExchange
  holders: Pick<HolderFinder, 'forOwner'>
  replicator: Pick<Replicator, 'offer'>
}

export interface CopyCheckerInit {
  self: string
}

export class CopyChecker {
  private readonly c: CopyCheckerComponents
  private readonly self: string

  constructor (components: CopyCheckerComponents, init: CopyCheckerInit) {
    this.c = components
    this.self = init.self
  }

  /** every block of `owner`'s part under `root`, at every holder placement gives */
  async check (owner: string, root: CID, opts: { readData?: boolean, repair?: boolean }, options: AbortOptions = {}): Promise<PartCheck> {
    const { getter, placement } = await this.c.holders.forOwner(owner)
    const report = await verifyCopies({ blocks: this.c.blocks, exchange: this.c.exchange, getter }, {
      root,
      self: this.self,
      readData: opts.readData,
      holdersFor: placement
    }, options)
    const problems: PartCheck['problems'] = report.problems.map(p => ({ ...p }))
    if (opts.repair === true) {
      for (const p of problems) {
        if (p.state === 'unreachable') continue
        p.repaired = await this.repairCopy(getter, p.holder, CID.parse(p.cid), options)
      }
    }
    return { blocks: report.blocks, copies: report.copies, problems }
  }

  /** re-makes one copy at `holder` from a good copy found through `getter` (verified) */
  private async repairCopy (getter: RemoteBlockGetter, holder: string, cid: CID, options: AbortOptions): Promise<boolean> {
    try {
      const bytes = await getter.get(cid, options)
      await this.c.blocks.put(cid, bytes, options)
      if (holder === this.self) return true
      const confirmed = await this.c.replicator.offer(holder, [cid], options)
      return confirmed.some(c => c.equals(cid))
    } catch (err: any) {
      log.error('repairing %s at %s failed: %s', cid, holder, err.message)
      return false
    }
  }
}
