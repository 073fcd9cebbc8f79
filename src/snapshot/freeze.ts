// Barrier mode's freeze and thaw: the pre hooks run when this agent prepares for a barrier
// snapshot and the post hooks once its capture is done. The snapshot is written down as frozen
// before the pre hooks run, so an agent that crashes while frozen runs the post hooks (thaws) at
// its next start.
import { logger } from '@libp2p/logger'
import { runPostHooks, runPreHooks, type HookedSource } from '../hooks/index.js'
import { FROZEN, type AgentState } from '../state/index.js'
import type { Marker } from '../wire/index.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('snapmesh:snapshot:freeze')

export interface FreezerComponents {
  state: Pick<AgentState, 'get' | 'set'>
}

export interface FreezerInit {
  /** the sources whose hooks run */
  sources: HookedSource[]
}

export class Freezer {
  private readonly state: FreezerComponents['state']
  private readonly sources: HookedSource[]

  constructor (components: FreezerComponents, init: FreezerInit) {
    this.state = components.state
    this.sources = init.sources
  }

  /** the barrier snapshots this agent is written down as frozen for */
  async frozen (options: AbortOptions = {}): Promise<string[]> {
    return JSON.parse(await this.state.get(FROZEN, options) ?? '[]')
  }

  /** runs the pre hooks; on failure the agent is not frozen and the error is thrown */
  async freeze (marker: Marker, options: AbortOptions = {}): Promise<void> {
    await this.mark(marker.id, true)
    try {
      await runPreHooks(this.sources, options)
    } catch (err) {
      await this.mark(marker.id, false)
      throw err
    }
  }

  /** runs the post hooks (their failures are logged, never thrown) */
  async thaw (id: string): Promise<void> {
    const failures = await runPostHooks(this.sources)
    for (const f of failures) log.error('post hook after snapshot %s failed: %s', id.slice(0, 8), f.message)
    await this.mark(id, false)
  }

  /** at start: the post hooks for the barrier snapshots this agent was frozen for when it stopped */
  async thawLeftovers (): Promise<void> {
    const ids = await this.frozen()
    if (ids.length === 0) return
    log('thawing after a stop while frozen for %s', ids.map(i => i.slice(0, 8)).join(', '))
    await this.thaw(ids[0])
    await this.state.set(FROZEN, '[]')
  }

  private async mark (id: string, frozen: boolean): Promise<void> {
    const ids = new Set(await this.frozen())
    if (frozen) ids.add(id)
    else ids.delete(id)
    await this.state.set(FROZEN, JSON.stringify([...ids]))
  }
}
