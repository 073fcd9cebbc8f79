// Where to look for a block: for one owner's part, the owner first, then the holders placement
// gives over the members there are now, then every other member; for any block (healing), the
// members of highest placement weight for it first.
import { RemoteBlockGetter, type BlockExchange } from '../exchange/index.js'
import { weight } from './placement.js'
import { placementFor } from './takeover.js'
import type { Blocks } from '../store/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export interface HolderFinderComponents {
  blocks: Pick<Blocks, 'get' | 'has'>
  exchange: BlockExchange
  /** this agent and the members connected now */
  members: () => Promise<string[]>
}

export interface HolderFinderInit {
  self: string
  /** copies of every block in all, the owner's counted */
  copies: number
}

export interface OwnerSource {
  getter: RemoteBlockGetter
  /** this agent and the members connected when the source was made */
  members: string[]
  /** where placement puts each of the owner's blocks over those members */
  placement: (cid: CID) => string[]
}

export class HolderFinder {
  private readonly c: HolderFinderComponents
  private readonly init: HolderFinderInit

  constructor (components: HolderFinderComponents, init: HolderFinderInit) {
    this.c = components
    this.init = init
  }

  /** a getter for one owner's blocks (verified, local store first) */
  async forOwner (owner: string): Promise<OwnerSource> {
    const members = await this.c.members()
    const placement = placementFor(owner, members, this.init.copies)
    const self = this.init.self
    const getter = new RemoteBlockGetter({ blocks: this.c.blocks, exchange: this.c.exchange }, {
      holders: (cid) => [...new Set([owner, ...placement(cid), ...members])].filter(p => p !== self)
    })
    return { getter, members, placement }
  }

  /** a verified copy of any block from another member, highest placement weight first */
  async fetchAnywhere (cid: CID, options: AbortOptions = {}): Promise<Uint8Array> {
    const members = (await this.c.members()).filter(p => p !== this.init.self)
    const ranked = members.map(p => ({ p, w: weight(cid, p) })).sort((a, b) => a.w === b.w ? 0 : a.w > b.w ? -1 : 1).map(x => x.p)
    return new RemoteBlockGetter({ blocks: this.c.blocks, exchange: this.c.exchange }, { holders: ranked }).get(cid, options)
  }
}
