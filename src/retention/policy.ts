// Retention rules: which snapshots `snapmesh forget --keep-*` keeps. A pure function of the
// snapshots' start times and tags, so every agent that applies the same rules to the same list
// forgets the same snapshots. Calendar buckets are in UTC.

export interface RetentionPolicy {
  /** the N most recent snapshots */
  last?: number
  /** the newest snapshot of each of the N most recent hours (days, ISO weeks, months, years) that have one; -1: every one */
  hourly?: number
  daily?: number
  weekly?: number
  monthly?: number
  yearly?: number
  /** ms: every snapshot started at most this long before the newest one */
  within?: number
  /** every snapshot whose tag is one of these */
  tags?: string[]
}

export interface RetentionCandidate { id: string, startedAt: number, tag?: string }

export interface RetentionDecision {
  id: string
  keep: boolean
  /** why it is kept, e.g. `last`, `daily 2026-12-03`; empty when it is forgotten */
  reasons: string[]
}

const COUNTS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

/** ISO 8601 week of a UTC time: `2026-W53` (the week belongs to the year of its Thursday) */
export function isoWeek (ms: number): string {
  const d = new Date(ms)
  const day = (d.getUTCDay() + 6) % 7 // Monday 0 … Sunday 6
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3)
  const year = new Date(thursday).getUTCFullYear()
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 86400_000))
  return `${year}-W${pad(week)}`
}

const BUCKETS: Record<'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly', (ms: number) => string> = {
  hourly: ms => new Date(ms).toISOString().slice(0, 13),
  daily: ms => new Date(ms).toISOString().slice(0, 10),
  weekly: isoWeek,
  monthly: ms => new Date(ms).toISOString().slice(0, 7),
  yearly: ms => new Date(ms).toISOString().slice(0, 4)
}

export function isEmptyPolicy (p: RetentionPolicy): boolean {
  return COUNTS.every(k => p[k] == null) && p.within == null && (p.tags == null || p.tags.length === 0)
}

/** What is wrong with a policy, naming the field; undefined when nothing is. */
export function policyProblem (p: RetentionPolicy): string | undefined {
  for (const k of COUNTS) {
    const v = p[k]
    if (v != null && (!Number.isSafeInteger(v) || v < -1)) return `keep.${k} must be a whole number of 0 or more (or -1 for all), got ${String(v)}`
  }
  if (p.within != null && (!Number.isFinite(p.within) || p.within < 0)) return `keep.within must be a span of 0 or more, got ${String(p.within)}`
  for (const [i, t] of (p.tags ?? []).entries()) {
    if (typeof t !== 'string' || t === '') return `keep.tags[${i}] must be a non-empty tag`
  }
  return undefined
}

/**
 * One decision per snapshot, newest first (ties by ID). A snapshot is kept when any rule keeps
 * it, and its reasons list every rule that does. Throws RangeError for an empty or invalid policy:
 * forgetting everything takes naming the snapshots.
 */
export function applyPolicy (snapshots: RetentionCandidate[], policy: RetentionPolicy): RetentionDecision[] {
  const problem = policyProblem(policy)
  if (problem != null) throw new RangeError(problem)
  if (isEmptyPolicy(policy)) throw new RangeError('no keep rule was given: name the snapshots to forget, or give at least one keep rule')
  const sorted = [...snapshots].sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const reasons = sorted.map(() => [] as string[])
  const limit = (n: number): number => n === -1 ? Infinity : n
  if (policy.last != null) {
    for (let i = 0; i < Math.min(sorted.length, limit(policy.last)); i++) reasons[i].push('last')
  }
  for (const kind of ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) {
    const n = policy[kind]
    if (n == null) continue
    const max = limit(n)
    const seen = new Set<string>()
    for (const [i, s] of sorted.entries()) {
      if (seen.size >= max) break
      const bucket = BUCKETS[kind](s.startedAt)
      if (seen.has(bucket)) continue
      seen.add(bucket)
      reasons[i].push(`${kind} ${bucket}`)
    }
  }
  if (policy.within != null && sorted.length > 0) {
    const from = sorted[0].startedAt - policy.within
    for (const [i, s] of sorted.entries()) if (s.startedAt >= from) reasons[i].push('within')
  }
  const tags = new Set(policy.tags ?? [])
  for (const [i, s] of sorted.entries()) if (s.tag != null && tags.has(s.tag)) reasons[i].push(`tag ${s.tag}`)
  return sorted.map((s, i) => ({ id: s.id, keep: reasons[i].length > 0, reasons: reasons[i] }))
}
