// Schedules: every agent fires each schedule at the same slots (cron, UTC, on its own clock). A
// slot's snapshot ID is derived from the schedule's name and the slot, so the markers of all agents
// that fire merge into one snapshot per slot. Slots missed while the agent was down are not fired
// afterwards.
import { logger } from '@libp2p/logger'
import { Cron } from 'croner'
import { every } from '../util/index.js'
import { scheduledSnapshotId, type Marker, type SignedResult, type SnapshotState } from '../wire/index.js'
import type { AbortOptions, Startable } from '@libp2p/interface'

const log = logger('snapmesh:snapshot:schedules')

export interface ScheduleSpec {
  name: string
  cron: string
  tag?: string
}

export interface SchedulerComponents {
  protocol: {
    get: (id: string) => SnapshotState | undefined
    adopt: (marker: Marker, results: SignedResult[]) => void
    startScheduled: (schedule: string, slot: number, expected: string[], options: AbortOptions & { tag?: string }) => Promise<SnapshotState>
  }
  /** what the catalog knows of a snapshot: forgotten, or its record's marker and results */
  history: {
    forgotten: (id: string) => Promise<boolean>
    record: (id: string) => Promise<{ marker: Marker, results: SignedResult[] } | undefined>
  }
  /** the participants a snapshot started now expects */
  expected: () => Promise<string[]>
  clock?: () => number
}

export interface SchedulerInit {
  schedules: ScheduleSpec[]
  /** a slot further in the past than this (the machine slept) is skipped, not fired late */
  lateMs: number
  /** how often the clock is looked at (default 200 ms) */
  intervalMs?: number
}

export class Scheduler implements Startable {
  private readonly c: SchedulerComponents
  private readonly init: SchedulerInit
  private readonly clock: () => number
  private controller = new AbortController()

  constructor (components: SchedulerComponents, init: SchedulerInit) {
    this.c = components
    this.init = init
    this.clock = components.clock ?? Date.now
  }

  async start (): Promise<void> {
    this.controller = new AbortController()
    const entries = this.init.schedules.map(s => {
      const cron = new Cron(s.cron, { paused: true, timezone: 'Etc/UTC' })
      return { spec: s, cron, next: cron.nextRun(new Date(this.clock()))?.getTime() }
    })
    if (entries.length === 0) return
    every(this.init.intervalMs ?? 200, this.controller.signal, async () => {
      const now = this.clock()
      for (const e of entries) {
        if (e.next == null || now < e.next) continue
        const slot = e.next
        e.next = e.cron.nextRun(new Date(Math.max(now, slot)))?.getTime()
        if (now - slot > this.init.lateMs) continue
        await this.fire(e.spec.name, slot, e.spec.tag)
      }
    }, (err) => { log.error('schedules: %s', err.message) })
  }

  async stop (): Promise<void> {
    this.controller.abort()
  }

  /** starts (or joins) the snapshot of one slot; never throws */
  async fire (schedule: string, slot: number, tag?: string): Promise<void> {
    try {
      const id = scheduledSnapshotId(schedule, slot)
      if (await this.c.history.forgotten(id)) return
      // a slot this agent already took part in before a restart (another agent's firing may have
      // come first, on a clock ahead of this one): known from the catalog, never captured again
      if (this.c.protocol.get(id) == null) {
        const known = await this.c.history.record(id)
        if (known != null) this.c.protocol.adopt(known.marker, known.results)
      }
      const state = await this.c.protocol.startScheduled(schedule, slot, await this.c.expected(), { tag, signal: this.controller.signal })
      log('schedule %s fired for slot %s: snapshot %s', schedule, new Date(slot).toISOString(), state.marker.id.slice(0, 8))
    } catch (err: any) {
      log.error('schedule %s slot %s failed to fire: %s', schedule, new Date(slot).toISOString(), err.message)
    }
  }
}
