// Retention rules: which snapshots `snapmesh forget --keep-*` keeps. A pure function of the
// snapshots' start times, IDs and tags, so every agent that applies the same rules to the same list
// forgets the same snapshots. Calendar buckets are in UTC; weeks are ISO 8601 weeks (Monday start).

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

type Period = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly'

const PERIODS: readonly Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly']
const COUNTS = ['last', ...PERIODS] as const
const DAY = 86_400_000

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')
const year = (d: Date): string => pad(d.getUTCFullYear(), 4)
const day = (d: Date): string => `${year(d)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`

/** ISO 8601 week of a UTC time, e.g. `2026-W53`: a week runs Monday to Sunday and belongs to the year of its Thursday. */
export function isoWeek (ms: number): string {
  const d = new Date(ms)
  const weekday = (d.getUTCDay() + 6) % 7 // Monday 0 … Sunday 6
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - weekday + 3))
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(thursday.getUTCFullYear(), 0, 1)) / (7 * DAY))
  return `${year(thursday)}-W${pad(week)}`
}

/** The calendar bucket a UTC time falls in, as it appears in a reason: `2026-12-03T07`, `2026-12-03`, `2026-W49`, `2026-12`, `2026`. */
const BUCKET: Record<Period, (ms: number) => string> = {
  hourly: ms => { const d = new Date(ms); return `${day(d)}T${pad(d.getUTCHours())}` },
  daily: ms => day(new Date(ms)),
  weekly: isoWeek,
  monthly: ms => { const d = new Date(ms); return `${year(d)}-${pad(d.getUTCMonth() + 1)}` },
  yearly: ms => year(new Date(ms))
}

/**
 * Whether a policy has no rule that could keep a snapshot: every count is absent or 0, `within` is
 * absent and there are no tags. As with restic, a count of 0 is the same as no count at all.
 */
export function isEmptyPolicy (p: RetentionPolicy): boolean {
  return COUNTS.every(k => p[k] == null || p[k] === 0) && p.within == null && (p.tags == null || p.tags.length === 0)
}

/** What is wrong with a policy, naming the field (`keep.daily`, `keep.tags[2]`, ...); undefined when nothing is. */
export function policyProblem (p: RetentionPolicy): string | undefined {
  for (const k of COUNTS) {
    const v: unknown = p[k]
    if (v != null && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < -1)) {
      return `keep.${k} must be a whole number of 0 or more (or -1 for all), got ${String(v)}`
    }
  }
  const within: unknown = p.within
  if (within != null && (typeof within !== 'number' || !Number.isFinite(within) || within < 0)) {
    return `keep.within must be a finite number of milliseconds, 0 or more, got ${String(within)}`
  }
  const tags: unknown = p.tags
  if (tags != null) {
    if (!Array.isArray(tags)) return `keep.tags must be a list of tags, got ${String(tags)}`
    for (const [i, t] of tags.entries()) {
      if (typeof t !== 'string' || t === '') return `keep.tags[${i}] must be a non-empty string, got ${typeof t === 'string' ? `'${t}'` : String(t)}`
    }
  }
  return undefined
}

/** newest first; equal start times fall to the smaller ID, so the order does not depend on the input's */
function newestFirst (a: RetentionCandidate, b: RetentionCandidate): number {
  if (a.startedAt !== b.startedAt) return b.startedAt - a.startedAt
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/**
 * One decision per snapshot, newest first (ties by ID). A snapshot is kept when any rule keeps it,
 * and its reasons list every rule that does, in the order last, hourly … yearly, within, tag.
 *
 * For a period rule with count N, the snapshots are walked newest to oldest and the first one met in
 * each bucket not seen before is kept, until N buckets have been counted; periods without snapshots
 * do not count. The input is not modified.
 *
 * Throws RangeError for an invalid policy, for a snapshot whose start time is not a finite number,
 * and for an empty policy: forgetting everything takes naming the snapshots.
 */
export function applyPolicy (snapshots: RetentionCandidate[], policy: RetentionPolicy): RetentionDecision[] {
  const problem = policyProblem(policy)
  if (problem != null) throw new RangeError(problem)
  if (isEmptyPolicy(policy)) throw new RangeError('no keep rule was given: name the snapshots to forget, or give at least one keep rule')
  for (const s of snapshots) {
    if (!Number.isFinite(s.startedAt)) throw new RangeError(`snapshot ${s.id} has no valid start time, got ${String(s.startedAt)}`)
  }
  const sorted = [...snapshots].sort(newestFirst)
  const reasons = sorted.map((): string[] => [])
  const upTo = (n: number): number => n === -1 ? Infinity : n

  if (policy.last != null) {
    const n = Math.min(sorted.length, upTo(policy.last))
    for (let i = 0; i < n; i++) reasons[i].push('last')
  }
  for (const period of PERIODS) {
    const count = policy[period]
    if (count == null || count === 0) continue
    const max = upTo(count)
    const seen = new Set<string>()
    for (let i = 0; i < sorted.length && seen.size < max; i++) {
      const bucket = BUCKET[period](sorted[i].startedAt)
      if (seen.has(bucket)) continue
      seen.add(bucket)
      reasons[i].push(`${period} ${bucket}`)
    }
  }
  if (policy.within != null && sorted.length > 0) {
    const since = sorted[0].startedAt - policy.within
    for (let i = 0; i < sorted.length && sorted[i].startedAt >= since; i++) reasons[i].push('within')
  }
  if (policy.tags != null && policy.tags.length > 0) {
    const tags = new Set(policy.tags)
    sorted.forEach((s, i) => { if (s.tag != null && tags.has(s.tag)) reasons[i].push(`tag ${s.tag}`) })
  }
  return sorted.map((s, i) => ({ id: s.id, keep: reasons[i].length > 0, reasons: reasons[i] }))
}
