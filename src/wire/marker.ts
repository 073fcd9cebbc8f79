// Markers: what starts a snapshot, and the snapshot-describing fields a record repeats.
import { InvalidMessageError } from './errors.js'
import { clean, constField, describe, fail, idField, only, optStr, peerIdField, str, uint, type Obj } from './fields.js'
import { peerIdProblem, scheduledSnapshotId } from './ids.js'
import { MAX_DEADLINE_MS, MAX_PARTICIPANTS, MAX_PREPARE_TIMEOUT_MS, MAX_SCHEDULE_NAME, MAX_TAG_LENGTH } from './limits.js'

export type Consistency = 'marker' | 'barrier'

export interface Marker extends MarkerFields {
  v: 1
  type: 'marker'
  /**
   * 'marker': each participant captures when the marker reaches it. 'barrier': each participant
   * freezes (pre hooks) and says so; captures start only once every expected participant is
   * prepared; see PROTOCOL.md
   */
  consistency: Consistency
  /** barrier mode only: how long a participant waits, frozen, for every other one to prepare */
  prepareTimeoutMs?: number
  /**
   * a scheduled snapshot: the schedule's name and the slot (ms since the epoch) it fired for. Its
   * `id` is scheduledSnapshotId(schedule, slot), so every agent that fires for the slot starts the
   * same snapshot; their markers merge (see mergeMarkers).
   */
  schedule?: string
  slot?: number
}

/**
 * The union of two markers of one scheduled snapshot, as sent by different agents firing for the
 * same slot: every peer either expects, the smallest initiator and Lamport time. Order-independent,
 * so agents that saw the same markers hold the same one. Throws InvalidMessageError for markers
 * that are not two firings of one slot.
 */
export function mergeMarkers (a: Marker, b: Marker): Marker {
  if (a.id !== b.id || a.schedule == null || a.schedule !== b.schedule || a.slot !== b.slot) {
    throw new InvalidMessageError(`markers of ${a.id.slice(0, 8)} and ${b.id.slice(0, 8)} are not firings of one schedule slot`)
  }
  for (const k of ['startedAt', 'deadline', 'consistency', 'tag'] as const) {
    if (a[k] !== b[k]) throw new InvalidMessageError(`two firings of schedule ${a.schedule} slot ${a.slot} differ in field "${k}"`, k)
  }
  const expected = [...new Set([...a.expected, ...b.expected])].sort().slice(0, MAX_PARTICIPANTS)
  const m: Marker = { ...a, initiator: a.initiator < b.initiator ? a.initiator : b.initiator, lamport: Math.min(a.lamport, b.lamport), expected }
  if (!m.expected.includes(m.initiator)) m.expected = [...new Set([...m.expected.slice(0, MAX_PARTICIPANTS - 1), m.initiator])].sort()
  return m
}

/** The marker fields a snapshot record repeats: checked alike in markers and records. */
export interface MarkerFields {
  /** 64 lowercase hex digits */
  id: string
  /** peer ID of the agent that started the snapshot */
  initiator: string
  lamport: number
  tag?: string
  /** ms since the epoch */
  startedAt: number
  /** ms since the epoch, absolute */
  deadline: number
  /** peer IDs: sorted, unique, including the initiator */
  expected: string[]
}

/** Checks the snapshot-describing fields of a marker or record map; throws InvalidMessageError. */
export function checkMarkerFields (o: Obj, where: string): MarkerFields {
  const id = idField(o, where)
  const initiator = peerIdField(o, 'initiator', where)
  const lamport = uint(o, 'lamport', where)
  const tag = optStr(o, 'tag', where, MAX_TAG_LENGTH)
  const startedAt = uint(o, 'startedAt', where)
  const deadline = uint(o, 'deadline', where)
  if (deadline <= startedAt) fail(where, 'deadline', `must be after startedAt (${startedAt})`, deadline)
  if (deadline - startedAt > MAX_DEADLINE_MS) fail(where, 'deadline', `must be at most ${MAX_DEADLINE_MS} ms after startedAt (${startedAt})`, deadline)
  const exp = o.expected
  if (!Array.isArray(exp) || exp.length === 0 || exp.length > MAX_PARTICIPANTS) fail(where, 'expected', `must list 1 to ${MAX_PARTICIPANTS} peer IDs`, exp)
  const expected: string[] = []
  for (const [i, p] of exp.entries()) {
    const problem = peerIdProblem(p)
    if (problem != null) throw new InvalidMessageError(`${where}: field "expected" entry ${i} ${problem}`, 'expected')
    if (i > 0 && !((exp[i - 1] as string) < p)) fail(where, 'expected', `must be sorted and list each peer once (entry ${i} is ${describe(p)}, after ${describe(exp[i - 1])})`)
    expected.push(p)
  }
  if (!expected.includes(initiator)) fail(where, 'expected', `must include the initiator ${initiator}`)
  return clean({ id, initiator, lamport, tag, startedAt, deadline, expected })
}

/** The schedule fields of a marker or record map: both or neither, and the ID they imply. */
export function checkSchedule (o: Obj, where: string, id: string, consistency: Consistency): { schedule?: string, slot?: number } {
  if (o.schedule === undefined && o.slot === undefined) return {}
  const schedule = str(o, 'schedule', where, MAX_SCHEDULE_NAME)
  const slot = uint(o, 'slot', where)
  if (consistency !== 'marker') fail(where, 'consistency', 'must be "marker" for a scheduled snapshot')
  if (scheduledSnapshotId(schedule, slot) !== id) fail(where, 'id', `is not the ID of schedule ${JSON.stringify(schedule)} slot ${slot}`)
  return { schedule, slot }
}

/** The consistency fields of a marker or record map: absent means marker mode. */
export function checkConsistency (o: Obj, where: string): { consistency: Consistency, prepareTimeoutMs?: number } {
  const c = o.consistency ?? 'marker'
  if (c !== 'marker' && c !== 'barrier') fail(where, 'consistency', 'must be "marker" or "barrier"', o.consistency)
  if (c === 'marker') {
    if (o.prepareTimeoutMs !== undefined) fail(where, 'prepareTimeoutMs', 'is only for consistency "barrier"')
    return { consistency: 'marker' }
  }
  const t = uint(o, 'prepareTimeoutMs', where)
  if (t < 1 || t > MAX_PREPARE_TIMEOUT_MS) fail(where, 'prepareTimeoutMs', `must be 1 to ${MAX_PREPARE_TIMEOUT_MS}`, t)
  return { consistency: 'barrier', prepareTimeoutMs: t }
}

const MARKER_FIELDS = new Set(['v', 'type', 'id', 'initiator', 'lamport', 'tag', 'startedAt', 'deadline', 'expected', 'consistency', 'prepareTimeoutMs', 'schedule', 'slot'])

/** A decoded map checked field by field as a marker; returns a fresh Marker. */
export function decodeMarkerObject (o: Obj, where = 'marker'): Marker {
  constField(o, 'v', 1, where)
  constField(o, 'type', 'marker', where)
  only(o, MARKER_FIELDS, where)
  const fields = checkMarkerFields(o, where)
  const mode = checkConsistency(o, where)
  return clean({ v: 1 as const, type: 'marker' as const, ...fields, ...mode, ...checkSchedule(o, where, fields.id, mode.consistency) })
}
