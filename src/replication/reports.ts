// Copy reports out: the agent that counted a part's copies (its owner after a push, or the member
// that took over a gone owner's part) signs a report, merges it into its own record and sends it to
// every agent on the copies topic.
import { logger } from '@libp2p/logger'
import { COPIES_TOPIC, encodeCopyReport, signCopyReport, type CopyReport } from '../metadata/index.js'
import type { Mesh } from '../node/index.js'
import type { PrivateKey } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

const log = logger('snapmesh:replication:reports')

export interface CopyReporterComponents {
  privateKey: PrivateKey
  mesh: Pick<Mesh, 'peerId' | 'publish'>
  /** merges a report (this agent's or a peer's, its signature checked) into the record */
  merge: (report: CopyReport) => Promise<void>
  clock?: () => number
}

export interface CopyReporterInit {
  /** the copies this agent's config asks for */
  wanted: number
}

export interface Counted {
  blocks: number
  copies: number
  holders: string[]
}

export class CopyReporter {
  private readonly c: CopyReporterComponents
  private readonly init: CopyReporterInit

  constructor (components: CopyReporterComponents, init: CopyReporterInit) {
    this.c = components
    this.init = init
  }

  async report (id: string, owner: string, root: CID, counted: Counted): Promise<void> {
    const report = await signCopyReport(this.c.privateKey, {
      id,
      owner,
      root,
      reporter: this.c.mesh.peerId,
      time: (this.c.clock ?? Date.now)(),
      blocks: counted.blocks,
      copies: counted.copies,
      wanted: this.init.wanted,
      holders: counted.holders
    })
    await this.c.merge(report)
    try {
      await this.c.mesh.publish(COPIES_TOPIC, encodeCopyReport(report))
    } catch (err: any) {
      // no subscribed peer: the record in the DHT carries the report to them later
      log('copy report for %s not sent: %s', id.slice(0, 8), err.message)
    }
  }
}
