// The protocol core: pure functions of (marker, results, now). No I/O, no wall clock.
import type { Marker, SignedResult } from './messages.js'

export type SnapshotStatus = 'running' | 'complete' | 'partial' | 'failed'

export interface SnapshotState {
  marker: Marker
  /** at most one result per peer, the best seen */
  results: Map<string, SignedResult>
}

export interface StatusInfo {
  status: SnapshotStatus
  reasons: string[]
  /** the time the status became final: the latest result time, or the deadline */
  finishedAt?: number
}

export function newState (marker: Marker): SnapshotState {
  return { marker, results: new Map() }
}

/** Is `a` the better of two results from one peer? ok beats error; then the later one. */
function better (a: SignedResult, b: SignedResult): boolean {
  if (a.status !== b.status) return a.status === 'ok'
  if (a.time !== b.time) return a.time > b.time
  return Buffer.compare(Buffer.from(a.sig), Buffer.from(b.sig)) > 0
}

/** Adds a (verified) result. Idempotent; returns the same object when nothing changed. */
export function applyResult (state: SnapshotState, r: SignedResult): SnapshotState {
  if (r.id !== state.marker.id) return state
  const have = state.results.get(r.peerId)
  if (have != null && !better(r, have)) return state
  const results = new Map(state.results)
  results.set(r.peerId, r)
  return { marker: state.marker, results }
}

/**
 * The status follows from the results alone: complete once every expected participant reported
 * ok (whenever that is); otherwise running until the deadline, then partial (some ok) or failed
 * (none ok). Results from peers outside `expected` never change it.
 */
export function computeStatus (state: SnapshotState, now: number): StatusInfo {
  const { marker, results } = state
  const reasons: string[] = []
  let ok = 0
  let latest = 0
  for (const peer of marker.expected) {
    const r = results.get(peer)
    if (r?.status === 'ok') {
      ok++
      latest = Math.max(latest, r.time)
    } else if (r != null) {
      reasons.push(`${r.name} (${peer}) failed: ${r.error ?? 'unknown error'}`)
      latest = Math.max(latest, r.time)
    } else {
      reasons.push(`${peer} did not report before the deadline`)
    }
  }
  if (ok === marker.expected.length) return { status: 'complete', reasons: [], finishedAt: Math.max(latest, marker.startedAt) }
  if (now < marker.deadline) return { status: 'running', reasons: [] }
  return { status: ok > 0 ? 'partial' : 'failed', reasons, finishedAt: marker.deadline }
}
