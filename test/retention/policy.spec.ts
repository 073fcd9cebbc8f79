import assert from 'node:assert/strict'
import { applyPolicy, isoWeek, policyProblem, type RetentionCandidate } from '../../src/retention/policy.js'

const at = (iso: string, id = iso, tag?: string): RetentionCandidate => ({ id, startedAt: Date.parse(iso), ...(tag != null ? { tag } : {}) })
const kept = (d: ReturnType<typeof applyPolicy>): string[] => d.filter(x => x.keep).map(x => x.id)

describe('retention / policy', () => {
  it('keeps the last n, newest first, one decision per snapshot', () => {
    const snaps = [at('2026-12-01T10:00:00Z', 'a'), at('2026-12-03T10:00:00Z', 'c'), at('2026-12-02T10:00:00Z', 'b')]
    const d = applyPolicy(snaps, { last: 2 })
    assert.deepEqual(d.map(x => x.id), ['c', 'b', 'a'])
    assert.deepEqual(kept(d), ['c', 'b'])
    assert.deepEqual(d[2].reasons, [])
    assert.deepEqual(kept(applyPolicy(snaps, { last: -1 })), ['c', 'b', 'a'])
    assert.deepEqual(kept(applyPolicy(snaps, { last: 0 })), [])
  })

  it('daily keeps the newest snapshot of each of the n most recent days that have one', () => {
    const snaps: RetentionCandidate[] = []
    for (let day = 1; day <= 30; day++) {
      if (day === 28) continue // a day without snapshots does not count
      for (const h of [1, 9, 17]) snaps.push(at(`2026-11-${String(day).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00Z`))
    }
    const d = applyPolicy(snaps, { daily: 4 })
    assert.deepEqual(kept(d), ['2026-11-30T17:00:00Z', '2026-11-29T17:00:00Z', '2026-11-27T17:00:00Z', '2026-11-26T17:00:00Z'])
    assert.deepEqual(d.find(x => x.keep)?.reasons, ['daily 2026-11-30'])
  })

  it('weekly buckets are ISO weeks: a Sunday and the next Monday differ; New Year follows the week\'s Thursday', () => {
    assert.equal(isoWeek(Date.parse('2026-12-06T12:00:00Z')), '2026-W49') // Sunday
    assert.equal(isoWeek(Date.parse('2026-12-07T00:00:00Z')), '2026-W50') // Monday
    assert.equal(isoWeek(Date.parse('2026-12-31T12:00:00Z')), '2026-W53')
    assert.equal(isoWeek(Date.parse('2027-01-01T12:00:00Z')), '2026-W53')
    assert.equal(isoWeek(Date.parse('2027-01-04T12:00:00Z')), '2027-W01')
    assert.equal(isoWeek(Date.parse('2024-12-30T12:00:00Z')), '2025-W01')
    const d = applyPolicy([at('2026-12-06T12:00:00Z', 'sun'), at('2026-12-07T08:00:00Z', 'mon'), at('2026-12-05T08:00:00Z', 'sat')], { weekly: 2 })
    assert.deepEqual(kept(d), ['mon', 'sun'])
  })

  it('monthly and yearly keep the newest of each month and year', () => {
    const snaps = [at('2025-06-01T00:00:00Z', 'y25'), at('2026-01-15T00:00:00Z', 'jan-a'), at('2026-01-20T00:00:00Z', 'jan-b'), at('2026-02-02T00:00:00Z', 'feb')]
    assert.deepEqual(kept(applyPolicy(snaps, { monthly: 2 })), ['feb', 'jan-b'])
    assert.deepEqual(kept(applyPolicy(snaps, { yearly: -1 })), ['feb', 'y25'])
  })

  it('rules combine as a union and every reason is given', () => {
    const snaps = [at('2026-12-03T10:00:00Z', 'n'), at('2026-12-03T09:00:00Z', 'm'), at('2026-12-02T10:00:00Z', 'y', 'nightly'), at('2026-11-01T10:00:00Z', 'old')]
    const d = applyPolicy(snaps, { last: 1, daily: 2, tags: ['nightly'] })
    assert.deepEqual(kept(d), ['n', 'y'])
    assert.deepEqual(d[0].reasons, ['last', 'daily 2026-12-03'])
    assert.deepEqual(d[2].reasons, ['daily 2026-12-02', 'tag nightly'])
  })

  it('within keeps what started at most that long before the newest snapshot', () => {
    const snaps = [at('2026-12-03T10:00:00Z', 'a'), at('2026-12-02T11:00:00Z', 'b'), at('2026-12-02T09:00:00Z', 'c')]
    assert.deepEqual(kept(applyPolicy(snaps, { within: 24 * 3600_000 })), ['a', 'b'])
  })

  it('is deterministic when snapshots start at the same moment', () => {
    const snaps = [at('2026-12-03T10:00:00Z', 'z'), at('2026-12-03T10:00:00Z', 'a'), at('2026-12-03T10:00:00Z', 'm')]
    assert.deepEqual(kept(applyPolicy(snaps, { last: 1 })), ['a'])
    assert.deepEqual(kept(applyPolicy([...snaps].reverse(), { daily: 1 })), ['a'])
  })

  it('refuses an empty policy and names the wrong field', () => {
    assert.throws(() => applyPolicy([at('2026-12-03T10:00:00Z')], {}), /no keep rule/)
    assert.match(policyProblem({ daily: 1.5 }) ?? '', /keep\.daily must be a whole number.*1\.5/)
    assert.match(policyProblem({ last: -2 }) ?? '', /keep\.last/)
    assert.match(policyProblem({ within: -1 }) ?? '', /keep\.within/)
    assert.match(policyProblem({ tags: [''] }) ?? '', /keep\.tags\[0\]/)
    assert.equal(policyProblem({ last: -1, weekly: 4 }), undefined)
  })
})
