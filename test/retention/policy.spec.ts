import assert from 'node:assert/strict'
import { applyPolicy, isEmptyPolicy, isoWeek, policyProblem } from '../../src/retention/policy.js'
import type { RetentionCandidate, RetentionDecision, RetentionPolicy } from '../../src/retention/policy.js'

const HOUR = 3600_000
const DAY = 24 * HOUR

/** a snapshot started at `iso`, named after it unless given an ID */
const at = (iso: string, id = iso, tag?: string): RetentionCandidate => {
  const startedAt = Date.parse(iso)
  assert.ok(Number.isFinite(startedAt), `bad test time ${iso}`)
  return { id, startedAt, ...(tag != null ? { tag } : {}) }
}
const kept = (d: RetentionDecision[]): string[] => d.filter(x => x.keep).map(x => x.id)
const reasonsOf = (d: RetentionDecision[], id: string): string[] | undefined => d.find(x => x.id === id)?.reasons

/** a fixed permutation (a small LCG), so a test that shuffles is repeatable */
function shuffled<T> (items: T[], seed = 7): T[] {
  const out = [...items]
  let s = seed
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648
    const j = s % (i + 1)
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/**
 * ISO week by a different method from the module's: week = ⌊(ordinal − weekday + 10) / 7⌋, moved
 * into the previous year when 0 and into the next when past the year's last week.
 */
function referenceIsoWeek (ms: number): string {
  const d = new Date(ms)
  const y = d.getUTCFullYear()
  const ordinal = Math.floor((Date.UTC(y, d.getUTCMonth(), d.getUTCDate()) - Date.UTC(y, 0, 1)) / DAY) + 1
  const weekday = d.getUTCDay() === 0 ? 7 : d.getUTCDay()
  const leap = (yr: number): boolean => (yr % 4 === 0 && yr % 100 !== 0) || yr % 400 === 0
  const weeksIn = (yr: number): number => {
    const jan1 = new Date(Date.UTC(yr, 0, 1)).getUTCDay()
    return jan1 === 4 || (leap(yr) && jan1 === 3) ? 53 : 52
  }
  const week = Math.floor((ordinal - weekday + 10) / 7)
  const [wy, wn] = week < 1 ? [y - 1, weeksIn(y - 1)] : week > weeksIn(y) ? [y + 1, 1] : [y, week]
  return `${wy}-W${String(wn).padStart(2, '0')}`
}

describe('retention / policy', () => {
  describe('last', () => {
    it('keeps the n most recent, and gives one decision per snapshot, newest first', () => {
      const snaps = [at('2026-12-01T10:00:00Z', 'a'), at('2026-12-03T10:00:00Z', 'c'), at('2026-12-02T10:00:00Z', 'b'), at('2026-11-30T10:00:00Z', 'z')]
      const d = applyPolicy(snaps, { last: 2 })
      assert.deepEqual(d, [
        { id: 'c', keep: true, reasons: ['last'] },
        { id: 'b', keep: true, reasons: ['last'] },
        { id: 'a', keep: false, reasons: [] },
        { id: 'z', keep: false, reasons: [] }
      ])
      assert.deepEqual(kept(applyPolicy(snaps, { last: 10 })), ['c', 'b', 'a', 'z'])
    })

    it('-1 keeps every snapshot, and 0 keeps none when another rule is given', () => {
      const snaps = [at('2026-12-01T10:00:00Z', 'a'), at('2026-12-03T10:00:00Z', 'c'), at('2026-12-02T10:00:00Z', 'b')]
      assert.deepEqual(kept(applyPolicy(snaps, { last: -1 })), ['c', 'b', 'a'])
      assert.deepEqual(kept(applyPolicy(snaps, { last: 0, tags: ['none'] })), [])
    })

    it('does not change the input and returns [] for no snapshots', () => {
      const snaps = [at('2026-12-01T10:00:00Z', 'a'), at('2026-12-03T10:00:00Z', 'c')]
      const before = structuredClone(snaps)
      applyPolicy(snaps, { last: 1, daily: 3, within: DAY })
      assert.deepEqual(snaps, before)
      assert.deepEqual(applyPolicy([], { last: 3 }), [])
    })
  })

  describe('hourly and daily', () => {
    it('hourly keeps the newest of each of the n most recent hours that have snapshots', () => {
      const snaps = ['07:59:59', '07:10:00', '06:30:00', '04:45:00', '04:05:00', '03:00:00'].map(t => at(`2026-12-03T${t}Z`, t))
      const d = applyPolicy(snaps, { hourly: 3 })
      assert.deepEqual(kept(d), ['07:59:59', '06:30:00', '04:45:00']) // 05h has none and does not count
      assert.deepEqual(reasonsOf(d, '07:59:59'), ['hourly 2026-12-03T07'])
      assert.deepEqual(reasonsOf(d, '04:45:00'), ['hourly 2026-12-03T04'])
    })

    it('daily, across a month of several snapshots a day, keeps the newest of each of the n most recent days', () => {
      const snaps: RetentionCandidate[] = []
      for (let day = 1; day <= 30; day++) {
        if (day === 28) continue // a day without snapshots does not count
        for (const h of ['01', '09', '17', '23']) snaps.push(at(`2026-11-${String(day).padStart(2, '0')}T${h}:00:00Z`))
      }
      const d = applyPolicy(shuffled(snaps), { daily: 4 })
      assert.equal(d.length, snaps.length)
      assert.deepEqual(kept(d), ['2026-11-30T23:00:00Z', '2026-11-29T23:00:00Z', '2026-11-27T23:00:00Z', '2026-11-26T23:00:00Z'])
      assert.deepEqual(reasonsOf(d, '2026-11-30T23:00:00Z'), ['daily 2026-11-30'])
      assert.deepEqual(reasonsOf(d, '2026-11-27T23:00:00Z'), ['daily 2026-11-27'])

      const all = applyPolicy(snaps, { daily: -1 })
      const expected = [...new Set(snaps.map(s => s.id.slice(0, 10)))].sort().reverse().map(day => `${day}T23:00:00Z`)
      assert.equal(expected.length, 29)
      assert.deepEqual(kept(all), expected)
    })

    it('days are UTC days, whatever the local time zone', () => {
      const snaps = [at('2026-12-03T00:00:00Z', 'after-midnight'), at('2026-12-02T23:59:59.999Z', 'before-midnight'), at('2026-12-02T00:00:00Z', 'early')]
      const d = applyPolicy(snaps, { daily: 2 })
      assert.deepEqual(kept(d), ['after-midnight', 'before-midnight'])
      assert.deepEqual(reasonsOf(d, 'before-midnight'), ['daily 2026-12-02'])
    })
  })

  describe('weekly (ISO weeks)', () => {
    it('names weeks as ISO 8601 does, at Sunday/Monday and at New Year', () => {
      assert.equal(isoWeek(Date.parse('2026-12-06T23:59:59.999Z')), '2026-W49') // Sunday
      assert.equal(isoWeek(Date.parse('2026-12-07T00:00:00Z')), '2026-W50') // the Monday after
      assert.equal(isoWeek(Date.parse('2026-12-31T12:00:00Z')), '2026-W53') // Thursday
      assert.equal(isoWeek(Date.parse('2027-01-01T12:00:00Z')), '2026-W53') // Friday: still 2026's week
      assert.equal(isoWeek(Date.parse('2027-01-03T23:00:00Z')), '2026-W53') // Sunday
      assert.equal(isoWeek(Date.parse('2027-01-04T00:00:00Z')), '2027-W01') // Monday
      assert.equal(isoWeek(Date.parse('2024-12-30T12:00:00Z')), '2025-W01') // a Monday that belongs to next year
      assert.equal(isoWeek(Date.parse('2021-01-03T12:00:00Z')), '2020-W53')
      assert.equal(isoWeek(Date.parse('2026-01-01T00:00:00Z')), '2026-W01')
    })

    it('agrees with an independent ISO week computation on every day from 1990 to 2060', () => {
      let previous: string | undefined
      let mondays = 0
      for (let t = Date.UTC(1990, 0, 1); t < Date.UTC(2061, 0, 1); t += DAY) {
        for (const ms of [t, t + 12 * HOUR, t + DAY - 1]) assert.equal(isoWeek(ms), referenceIsoWeek(ms), new Date(ms).toISOString())
        const week = isoWeek(t)
        const monday = new Date(t).getUTCDay() === 1
        if (previous != null) assert.equal(week !== previous, monday, `week changed on a day that is not a Monday: ${new Date(t).toISOString()}`)
        if (monday) mondays++
        previous = week
      }
      assert.ok(mondays > 3000)
    })

    it('keeps the newest snapshot of each ISO week, a Sunday and the next Monday being in different weeks', () => {
      const snaps = [at('2026-12-06T12:00:00Z', 'sun'), at('2026-12-07T08:00:00Z', 'mon'), at('2026-12-05T08:00:00Z', 'sat'), at('2026-11-30T00:00:00Z', 'mon-before')]
      const d = applyPolicy(snaps, { weekly: 2 })
      assert.deepEqual(kept(d), ['mon', 'sun'])
      assert.deepEqual(reasonsOf(d, 'mon'), ['weekly 2026-W50'])
      assert.deepEqual(reasonsOf(d, 'sun'), ['weekly 2026-W49'])
    })

    it('puts the days around New Year 2027 in 2026-W53', () => {
      const snaps = [
        at('2027-01-04T09:00:00Z', 'mon-jan-4'),
        at('2027-01-03T09:00:00Z', 'sun-jan-3'),
        at('2027-01-01T09:00:00Z', 'fri-jan-1'),
        at('2026-12-31T09:00:00Z', 'thu-dec-31'),
        at('2026-12-28T09:00:00Z', 'mon-dec-28'),
        at('2026-12-27T09:00:00Z', 'sun-dec-27')
      ]
      const d = applyPolicy(shuffled(snaps, 3), { weekly: -1 })
      assert.deepEqual(kept(d), ['mon-jan-4', 'sun-jan-3', 'sun-dec-27'])
      assert.deepEqual(d.map(x => x.reasons), [['weekly 2027-W01'], ['weekly 2026-W53'], [], [], [], ['weekly 2026-W52']])
      // but by calendar year, Friday 1 January is 2027's
      assert.deepEqual(kept(applyPolicy(snaps, { yearly: 2 })), ['mon-jan-4', 'thu-dec-31'])
    })
  })

  describe('monthly and yearly', () => {
    it('keep the newest of each of the n most recent months and years that have snapshots', () => {
      const snaps = [
        at('2024-03-01T00:00:00Z', 'y24'),
        at('2025-06-01T00:00:00Z', 'y25-jun'),
        at('2025-12-31T23:59:59Z', 'y25-dec'),
        at('2026-01-15T00:00:00Z', 'jan-a'),
        at('2026-01-31T23:00:00Z', 'jan-b'),
        at('2026-03-02T00:00:00Z', 'mar') // no February
      ]
      const monthly = applyPolicy(snaps, { monthly: 3 })
      assert.deepEqual(kept(monthly), ['mar', 'jan-b', 'y25-dec'])
      assert.deepEqual(reasonsOf(monthly, 'jan-b'), ['monthly 2026-01'])
      assert.deepEqual(kept(applyPolicy(snaps, { monthly: -1 })), ['mar', 'jan-b', 'y25-dec', 'y25-jun', 'y24'])

      const yearly = applyPolicy(snaps, { yearly: 2 })
      assert.deepEqual(kept(yearly), ['mar', 'y25-dec'])
      assert.deepEqual(reasonsOf(yearly, 'y25-dec'), ['yearly 2025'])
      assert.deepEqual(kept(applyPolicy(snaps, { yearly: -1 })), ['mar', 'y25-dec', 'y24'])
    })
  })

  describe('within and tags', () => {
    it('within keeps every snapshot started at most that long before the newest one', () => {
      const snaps = [at('2026-12-03T10:00:00Z', 'a'), at('2026-12-02T10:00:00Z', 'edge'), at('2026-12-02T09:59:59.999Z', 'c'), at('2026-11-01T10:00:00Z', 'old')]
      const d = applyPolicy(snaps, { within: DAY })
      assert.deepEqual(kept(d), ['a', 'edge'])
      assert.deepEqual(reasonsOf(d, 'edge'), ['within'])
      assert.deepEqual(kept(applyPolicy(snaps, { within: 0 })), ['a'])
      // measured from the newest snapshot, not from now
      assert.deepEqual(kept(applyPolicy([at('2000-01-02T00:00:00Z', 'x'), at('2000-01-01T12:00:00Z', 'y')], { within: DAY })), ['x', 'y'])
    })

    it('tags keep every snapshot with one of the tags, whatever its age', () => {
      const snaps = [at('2026-12-03T10:00:00Z', 'a', 'hourly'), at('2026-12-02T10:00:00Z', 'b', 'nightly'), at('2020-01-01T10:00:00Z', 'c', 'nightly'), at('2019-01-01T10:00:00Z', 'd', 'weekly'), at('2018-01-01T10:00:00Z', 'e')]
      const d = applyPolicy(snaps, { tags: ['nightly', 'weekly'] })
      assert.deepEqual(kept(d), ['b', 'c', 'd'])
      assert.deepEqual(reasonsOf(d, 'c'), ['tag nightly'])
      assert.deepEqual(reasonsOf(d, 'd'), ['tag weekly'])
    })
  })

  describe('combined rules', () => {
    it('keep the union and list every reason in a fixed order', () => {
      const snaps = [
        at('2026-12-03T10:00:00Z', 'n'),
        at('2026-12-03T09:00:00Z', 'm'),
        at('2026-12-02T10:00:00Z', 'y', 'nightly'),
        at('2026-11-20T10:00:00Z', 'nov'),
        at('2026-11-01T10:00:00Z', 'old', 'nightly'),
        at('2026-10-01T10:00:00Z', 'older')
      ]
      const policy: RetentionPolicy = { last: 1, hourly: 1, daily: 2, weekly: 1, monthly: 2, yearly: 1, within: HOUR, tags: ['nightly'] }
      const d = applyPolicy(snaps, policy)
      assert.deepEqual(d.map(x => x.id), ['n', 'm', 'y', 'nov', 'old', 'older'])
      assert.deepEqual(kept(d), ['n', 'm', 'y', 'nov', 'old'])
      assert.deepEqual(reasonsOf(d, 'n'), ['last', 'hourly 2026-12-03T10', 'daily 2026-12-03', 'weekly 2026-W49', 'monthly 2026-12', 'yearly 2026', 'within'])
      assert.deepEqual(reasonsOf(d, 'm'), ['within'])
      assert.deepEqual(reasonsOf(d, 'y'), ['daily 2026-12-02', 'tag nightly'])
      assert.deepEqual(reasonsOf(d, 'nov'), ['monthly 2026-11'])
      assert.deepEqual(reasonsOf(d, 'old'), ['tag nightly'])
      assert.deepEqual(reasonsOf(d, 'older'), [])
      for (const x of d) assert.equal(x.keep, x.reasons.length > 0)
    })

    it('each rule counts its own buckets, not the ones another rule kept', () => {
      const snaps = [at('2026-12-03T10:00:00Z', 'd3'), at('2026-12-02T10:00:00Z', 'd2'), at('2026-12-01T10:00:00Z', 'd1')]
      assert.deepEqual(kept(applyPolicy(snaps, { last: 2, daily: 1 })), ['d3', 'd2'])
      assert.deepEqual(kept(applyPolicy(snaps, { last: 1, daily: 3 })), ['d3', 'd2', 'd1'])
    })
  })

  describe('order and determinism', () => {
    it('breaks ties on start time by ID, whatever the input order', () => {
      const snaps = [at('2026-12-03T10:00:00Z', 'z'), at('2026-12-03T10:00:00Z', 'a'), at('2026-12-03T10:00:00Z', 'm'), at('2026-12-02T10:00:00Z', 'b')]
      for (const input of [snaps, [...snaps].reverse(), shuffled(snaps, 11)]) {
        assert.deepEqual(applyPolicy(input, { last: 2 }).map(x => x.id), ['a', 'm', 'z', 'b'])
        assert.deepEqual(kept(applyPolicy(input, { last: 1 })), ['a'])
        assert.deepEqual(kept(applyPolicy(input, { daily: 2 })), ['a', 'b'])
        assert.deepEqual(kept(applyPolicy(input, { within: 0 })), ['a', 'm', 'z'])
      }
    })

    it('gives the same decisions for any order of a large input, one per snapshot', () => {
      const snaps: RetentionCandidate[] = []
      for (let i = 0; i < 500; i++) snaps.push({ id: `s${String(i).padStart(3, '0')}`, startedAt: Date.UTC(2025, 0, 1) + Math.floor(i / 3) * 7 * HOUR, ...(i % 50 === 0 ? { tag: 'keep' } : {}) })
      const policy: RetentionPolicy = { last: 5, hourly: 10, daily: 7, weekly: 4, monthly: 3, yearly: -1, tags: ['keep'] }
      const base = applyPolicy(snaps, policy)
      assert.equal(base.length, snaps.length)
      assert.deepEqual(new Set(base.map(x => x.id)), new Set(snaps.map(s => s.id)))
      for (let i = 1; i < base.length; i++) {
        const [a, b] = [snaps.find(s => s.id === base[i - 1].id), snaps.find(s => s.id === base[i].id)]
        assert.ok(a != null && b != null && (a.startedAt > b.startedAt || (a.startedAt === b.startedAt && a.id < b.id)))
      }
      for (const seed of [1, 2, 3]) assert.deepEqual(applyPolicy(shuffled(snaps, seed), policy), base)
      // s498 and s499 both start 166 × 7 h after New Year 2025 (Tuesday 18 February, 10:00): the smaller ID comes first
      assert.deepEqual(base.slice(0, 5).map(x => x.id), ['s498', 's499', 's495', 's496', 's497'])
      assert.deepEqual(base[0].reasons, ['last', 'hourly 2025-02-18T10', 'daily 2025-02-18', 'weekly 2025-W08', 'monthly 2025-02', 'yearly 2025'])
      assert.deepEqual(base[1].reasons, ['last'])
      assert.equal(base.filter(x => x.reasons.some(r => r.startsWith('hourly '))).length, 10)
      assert.equal(base.filter(x => x.reasons.some(r => r.startsWith('daily '))).length, 7)
      assert.equal(base.filter(x => x.reasons.some(r => r.startsWith('tag '))).length, 10)
    })

    it('keeps one decision for each input even when IDs repeat', () => {
      const d = applyPolicy([at('2026-12-03T10:00:00Z', 'x'), at('2026-12-01T10:00:00Z', 'x')], { last: 1 })
      assert.deepEqual(d, [{ id: 'x', keep: true, reasons: ['last'] }, { id: 'x', keep: false, reasons: [] }])
    })
  })

  describe('empty and invalid policies', () => {
    it('refuses a policy with no keep rule', () => {
      const snaps = [at('2026-12-03T10:00:00Z')]
      for (const p of [{}, { tags: [] }, { last: 0 }, { daily: 0, weekly: 0, tags: [] }] as RetentionPolicy[]) {
        assert.equal(isEmptyPolicy(p), true, JSON.stringify(p))
        assert.throws(() => applyPolicy(snaps, p), (err: Error) => err instanceof RangeError && /no keep rule was given/.test(err.message))
      }
      assert.throws(() => applyPolicy([], {}), RangeError)
      for (const p of [{ last: 1 }, { yearly: -1 }, { within: 0 }, { tags: ['nightly'] }, { last: 0, hourly: 2 }] as RetentionPolicy[]) {
        assert.equal(isEmptyPolicy(p), false, JSON.stringify(p))
      }
    })

    it('policyProblem names the wrong field', () => {
      assert.equal(policyProblem({ daily: 1.5 }), 'keep.daily must be a whole number of 0 or more (or -1 for all), got 1.5')
      assert.equal(policyProblem({ last: -2 }), 'keep.last must be a whole number of 0 or more (or -1 for all), got -2')
      assert.match(policyProblem({ hourly: NaN }) ?? '', /^keep\.hourly .*got NaN$/)
      assert.match(policyProblem({ weekly: Infinity }) ?? '', /^keep\.weekly /)
      assert.match(policyProblem({ monthly: '3' as unknown as number }) ?? '', /^keep\.monthly .*got 3$/)
      assert.match(policyProblem({ yearly: 2 ** 60 }) ?? '', /^keep\.yearly /)
      assert.equal(policyProblem({ within: -1 }), 'keep.within must be a finite number of milliseconds, 0 or more, got -1')
      assert.match(policyProblem({ within: Infinity }) ?? '', /^keep\.within .*got Infinity$/)
      assert.equal(policyProblem({ tags: ['ok', ''] }), 'keep.tags[1] must be a non-empty string, got \'\'')
      assert.match(policyProblem({ tags: [7 as unknown as string] }) ?? '', /^keep\.tags\[0\] .*got 7$/)
      assert.match(policyProblem({ tags: 'nightly' as unknown as string[] }) ?? '', /^keep\.tags must be a list/)
      for (const p of [{}, { last: -1, weekly: 4 }, { last: 0 }, { within: 0 }, { within: 1.5 }, { tags: ['a', 'b'] }] as RetentionPolicy[]) {
        assert.equal(policyProblem(p), undefined, JSON.stringify(p))
      }
    })

    it('applyPolicy throws the problem as a RangeError, and rejects a snapshot without a valid start time', () => {
      assert.throws(() => applyPolicy([], { daily: 1.5 }), { name: 'RangeError', message: 'keep.daily must be a whole number of 0 or more (or -1 for all), got 1.5' })
      assert.throws(() => applyPolicy([{ id: 'bad', startedAt: NaN }], { last: 1 }), { name: 'RangeError', message: /snapshot bad/ })
    })
  })
})
